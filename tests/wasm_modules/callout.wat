;; callout.wat: on request headers, proxy_http_call to the upstream named by the plugin
;; configuration (GET /auth, x-from: wasm, 3 s timeout: generous, so a loaded machine does not fail the calls that must succeed) and Pause. On the response:
;; a failed call (num_headers == 0) answers a local 503 "call failed"; otherwise the
;; request continues with "x-call-status: <:status>" and "x-call-body: <body>" added.
;; Also: on_configure registers shared queue "jobs" and asks for a 1 ms tick; on_tick
;; increments counter metric "ticks"; on_queue_ready dequeues and logs the message.
(module
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_ctx (param i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register_q (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc_metric (param i32 i64) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0..32: out slots. 512: the upstream name from the configuration
  (data (i32.const 64) "\04\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\05\00\00\00\0a\00\00\00\04\00\00\00\06\00\00\00\04\00\00\00\3a\6d\65\74\68\6f\64\00\47\45\54\00\3a\70\61\74\68\00\2f\61\75\74\68\00\3a\61\75\74\68\6f\72\69\74\79\00\61\75\74\68\00\78\2d\66\72\6f\6d\00\77\61\73\6d\00")
  (data (i32.const 160) ":status")
  (data (i32.const 176) "x-call-status")
  (data (i32.const 192) "x-call-body")
  (data (i32.const 208) "call failed")
  (data (i32.const 224) "jobs")
  (data (i32.const 232) "ticks")
  (data (i32.const 240) "x-call-error")
  (data (i32.const 256) "yes")
  (global $up_len (mut i32) (i32.const 0))
  (global $ctx (mut i32) (i32.const 0))
  (global $metric (mut i32) (i32.const 0))
  (global $queue (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_abi_version_0_2_1"))
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
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (i32.const 64) (i32.const 0) (i32.const 4)))
    (global.set $up_len (i32.load (i32.const 4)))
    (memory.copy (i32.const 512) (i32.load (i32.const 0)) (global.get $up_len))
    (drop (call $register_q (i32.const 224) (i32.const 4) (i32.const 8)))
    (global.set $queue (i32.load (i32.const 8)))
    (drop (call $define_metric (i32.const 0) (i32.const 232) (i32.const 5) (i32.const 8)))
    (global.set $metric (i32.load (i32.const 8)))
    (drop (call $set_tick (i32.const 1)))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (global.set $ctx (local.get $ctx))
    (if (call $http_call (i32.const 512) (global.get $up_len) (i32.const 64) (i32.const 88)
                         (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                         (i32.const 3000) (i32.const 12))
      (then
        (drop (call $add_header (i32.const 0) (i32.const 240) (i32.const 12) (i32.const 256) (i32.const 3)))
        (return (i32.const 0))))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32) (param $nh i32) (param i32 i32)
    (drop (call $set_ctx (global.get $ctx)))
    (if (i32.eqz (local.get $nh))
      (then
        (drop (call $local (i32.const 503) (i32.const 0) (i32.const 0) (i32.const 208) (i32.const 11)
                           (i32.const 0) (i32.const 0) (i32.const -1)))
        (return)))
    (drop (call $get_value (i32.const 6) (i32.const 160) (i32.const 7) (i32.const 16) (i32.const 20)))
    (drop (call $add_header (i32.const 0) (i32.const 176) (i32.const 13)
                            (i32.load (i32.const 16)) (i32.load (i32.const 20))))
    (drop (call $get_buffer (i32.const 4) (i32.const 0) (i32.const 1000) (i32.const 16) (i32.const 20)))
    (drop (call $add_header (i32.const 0) (i32.const 192) (i32.const 11)
                            (i32.load (i32.const 16)) (i32.load (i32.const 20))))
    (drop (call $continue (i32.const 0))))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $inc_metric (global.get $metric) (i64.const 1))))
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (if (i32.eqz (call $dequeue (local.get 1) (i32.const 16) (i32.const 20)))
      (then (drop (call $log (i32.const 2) (i32.load (i32.const 16)) (i32.load (i32.const 20)))))))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
)
