;; ender.wat: a request filter with no callback after the request, to see when its
;; streams end. Each callback logs its name ("create", "headers", "body", "delete").
;; on_request_headers reads request header x-mode: "local" answers 403, "pause" returns
;; Pause, "call" makes an http_call to upstream "auth" and returns Continue, "trap"
;; makes the next on_delete trap (unreachable); anything else (or none) continues.
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value"
    (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call"
    (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "create")
  (data (i32.const 24) "headers")
  (data (i32.const 32) "body")
  (data (i32.const 40) "delete")
  (data (i32.const 48) "x-mode")
  (data (i32.const 56) "auth")
  ;; the call's headers, serialized: :method GET, :path /auth, :authority auth
  (data (i32.const 128) "\03\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\05\00\00\00\0a\00\00\00\04\00\00\00:method\00GET\00:path\00/auth\00:authority\00auth\00")
  (global $trap (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32)
    (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get 0 i32.add global.set $heap
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32)
    (if (local.get 1) (then (drop (call $log (i32.const 2) (i32.const 16) (i32.const 6))))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $c i32)
    (drop (call $log (i32.const 2) (i32.const 24) (i32.const 7)))
    (if (call $get (i32.const 0) (i32.const 48) (i32.const 6) (i32.const 0) (i32.const 4))
      (then (return (i32.const 0))))
    (local.set $c (i32.load8_u (i32.load (i32.const 0))))
    (if (i32.eq (local.get $c) (i32.const 108))  ;; l
      (then (drop (call $local (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 0)
                               (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))))
    (if (i32.eq (local.get $c) (i32.const 112))  ;; p
      (then (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 99))  ;; c
      (then (drop (call $call (i32.const 56) (i32.const 4) (i32.const 128) (i32.const 68)
                              (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                              (i32.const 1000) (i32.const 8)))))
    (if (i32.eq (local.get $c) (i32.const 116))  ;; t
      (then (global.set $trap (i32.const 1))))
    i32.const 0)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 4)))
    i32.const 0)
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 40) (i32.const 6)))
    (if (global.get $trap) (then unreachable)))
)
