;; alternate.wat: adds "x-alternate: odd" to every other request (the 1st, 3rd, ...) of
;; the VM, and leaves the others untouched: a request after an edited one, and one after
;; an untouched one, must each reach the upstream as the plugin left it.
(module
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x-alternate")
  (data (i32.const 32) "odd")
  (global $heap (mut i32) (i32.const 1024))
  (global $n (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32)
    (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get 0 i32.add global.set $heap
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    global.get $n i32.const 1 i32.add global.set $n
    (if (i32.and (global.get $n) (i32.const 1))
      (then (drop (call $add (i32.const 0) (i32.const 16) (i32.const 11) (i32.const 32) (i32.const 3)))))
    i32.const 0))
