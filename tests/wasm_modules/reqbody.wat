;; reqbody.wat: watches proxy_on_request_body. Exported globals count the calls
;; ("calls"), the calls with end_of_stream ("eos_calls"), the call that first saw
;; end_of_stream ("eos_at", 1-based) and the body_size of the last call ("last_len").
;; What it does with the body is set by "set_mode":
;;   0  continue (the chunk goes on unchanged)
;;   1  Pause until end of stream, then read the whole buffer ("seen_ptr"/"seen_len")
;;   2  replace each chunk with "#" (proxy_set_buffer_bytes) and continue
;;   3  answer a local 403 "denied"
(module
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0..8: out slots
  (data (i32.const 256) "#")
  (data (i32.const 272) "denied")
  (global $mode (mut i32) (i32.const 0))
  (global $calls (export "calls") (mut i32) (i32.const 0))
  (global $eos_calls (export "eos_calls") (mut i32) (i32.const 0))
  (global $eos_at (export "eos_at") (mut i32) (i32.const 0))
  (global $last_len (export "last_len") (mut i32) (i32.const 0))
  (global $seen_ptr (export "seen_ptr") (mut i32) (i32.const 0))
  (global $seen_len (export "seen_len") (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "set_mode") (param i32) local.get 0 global.set $mode)
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
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
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_request_body") (param i32) (param $len i32) (param $eos i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.set $last_len (local.get $len))
    (if (local.get $eos)
      (then
        (global.set $eos_calls (i32.add (global.get $eos_calls) (i32.const 1)))
        (if (i32.eqz (global.get $eos_at)) (then (global.set $eos_at (global.get $calls))))))
    (if (i32.eq (global.get $mode) (i32.const 1))
      (then
        (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
        (drop (call $get_buffer (i32.const 0) (i32.const 0) (local.get $len) (i32.const 0) (i32.const 4)))
        (global.set $seen_ptr (i32.load (i32.const 0)))
        (global.set $seen_len (i32.load (i32.const 4)))))
    (if (i32.eq (global.get $mode) (i32.const 2))
      (then
        (drop (call $set_buffer (i32.const 0) (i32.const 0) (local.get $len) (i32.const 256) (i32.const 1)))))
    (if (i32.eq (global.get $mode) (i32.const 3))
      (then
        (drop (call $local (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 272) (i32.const 6)
                           (i32.const 0) (i32.const 0) (i32.const -1)))
        (return (i32.const 1))))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
)
