;; hostile.wat: a proxy-wasm filter whose misbehaviour is chosen by the first byte of its
;; plugin configuration, so one module serves every hostile-guest test:
;;   '0' healthy: adds request header "x-healthy: yes"
;;   'a' infinite loop in on_request_headers     'b' ... in on_response_headers
;;   'c' ... in on_response_body                 'd' ... in on_done
;;   'e' ... in on_context_create (HTTP)         'f' ... in on_tick (period 1 ms)
;;   'g' ... in on_configure                     'r' on_configure returns false
;;   'm' memory bomb: grows memory until refused, then adds "x-grow-failed: yes"
;;   'u' unreachable                             's' recursion until stack overflow
;;   'x' proc_exit(1)                            'p' allocator returns out-of-range
;;       pointers; reports the hostcall status in "x-status: invalid" when refused
(module
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "x-healthy")
  (data (i32.const 48) "yes")
  (data (i32.const 64) "x-grow-failed")
  (data (i32.const 80) "x-status")
  (data (i32.const 96) "invalid")
  (data (i32.const 112) "configured")
  (global $mode (mut i32) (i32.const 48))
  (global $heap (mut i32) (i32.const 65536))
  (global $bad_alloc (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    global.get $bad_alloc
    if i32.const 0xFFFFFFF0 return end
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add i32.const 7 i32.add i32.const -8 i32.and global.set $heap
    block
      loop
        global.get $heap memory.size i32.const 16 i32.shl i32.le_u br_if 1
        i32.const 1 memory.grow i32.const -1 i32.eq
        if i32.const 0 return end
        br 0
      end
    end
    local.get $p)
  (func $spin (loop (br 0)))
  (func $rec (param i32) (result i32) local.get 0 i32.const 1 i32.add call $rec)
  (func $is (param i32) (result i32) global.get $mode local.get 0 i32.eq)
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param $root i32) (param $len i32) (result i32)
    (if (i32.eqz (call $get_buffer (i32.const 7) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 4)))
      (then (if (i32.load (i32.const 4))
        (then (global.set $mode (i32.load8_u (i32.load (i32.const 0))))))))
    (drop (call $log (i32.const 2) (i32.const 112) (i32.const 10)))
    (if (call $is (i32.const 0x67)) (then (call $spin)))
    (if (call $is (i32.const 0x66)) (then (drop (call $set_tick (i32.const 1)))))
    (i32.eqz (call $is (i32.const 0x72))))
  (func (export "proxy_on_context_create") (param i32 i32)
    (if (i32.and (i32.ne (local.get 1) (i32.const 0)) (call $is (i32.const 0x65)))
      (then (call $spin))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (call $is (i32.const 0x61)) (then (call $spin)))
    (if (call $is (i32.const 0x75)) (then unreachable))
    (if (call $is (i32.const 0x73)) (then (drop (call $rec (i32.const 0)))))
    (if (call $is (i32.const 0x78)) (then (call $proc_exit (i32.const 1))))
    (if (call $is (i32.const 0x6d))
      (then
        (block $full (loop $more
          (br_if $full (i32.eq (memory.grow (i32.const 64)) (i32.const -1)))
          (br $more)))
        (drop (call $add_header (i32.const 0) (i32.const 64) (i32.const 13) (i32.const 48) (i32.const 3)))
        (return (i32.const 0))))
    (if (call $is (i32.const 0x70))
      (then
        (global.set $bad_alloc (i32.const 1))
        (if (i32.eq (call $get_pairs (i32.const 0) (i32.const 0) (i32.const 4)) (i32.const 6))
          (then (drop (call $add_header (i32.const 0) (i32.const 80) (i32.const 8) (i32.const 96) (i32.const 7)))))
        (global.set $bad_alloc (i32.const 0))
        (return (i32.const 0))))
    (drop (call $add_header (i32.const 0) (i32.const 32) (i32.const 9) (i32.const 48) (i32.const 3)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (if (call $is (i32.const 0x62)) (then (call $spin)))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (if (call $is (i32.const 0x63)) (then (call $spin)))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32)
    (if (call $is (i32.const 0x64)) (then (call $spin)))
    (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
  (func (export "proxy_on_tick") (param i32)
    (if (call $is (i32.const 0x66)) (then (call $spin))))
)
