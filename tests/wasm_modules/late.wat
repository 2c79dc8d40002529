;; late.wat: a response filter with no request callback and no on_log: its context is
;; made when the response headers arrive. Each callback logs its name ("create",
;; "response", "delete"); on_response_headers adds "x-late: 1".
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "create")
  (data (i32.const 24) "response")
  (data (i32.const 40) "delete")
  (data (i32.const 48) "x-late")
  (data (i32.const 56) "1")
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32)
    (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get 0 i32.add global.set $heap
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32)
    (if (local.get 1) (then (drop (call $log (i32.const 2) (i32.const 16) (i32.const 6))))))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 24) (i32.const 8)))
    (drop (call $add (i32.const 2) (i32.const 48) (i32.const 6) (i32.const 56) (i32.const 1)))
    i32.const 0)
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 40) (i32.const 6))))
)
