// Raw proxy-wasm ABI 0.2.1 host functions. AssemblyScript only emits the imports a
// plugin actually reaches, so a module never asks the host for more than it uses.

@external("env", "proxy_log")
export declare function proxy_log(level: u32, ptr: usize, len: usize): u32;
@external("env", "proxy_get_log_level")
export declare function proxy_get_log_level(ret: usize): u32;
@external("env", "proxy_get_current_time_nanoseconds")
export declare function proxy_get_current_time_nanoseconds(ret: usize): u32;
@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(ms: u32): u32;
@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(buf: u32, start: usize, max: usize, retPtr: usize, retLen: usize): u32;
@external("env", "proxy_set_buffer_bytes")
export declare function proxy_set_buffer_bytes(buf: u32, start: usize, size: usize, ptr: usize, len: usize): u32;
@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(map: u32, retPtr: usize, retLen: usize): u32;
@external("env", "proxy_set_header_map_pairs")
export declare function proxy_set_header_map_pairs(map: u32, ptr: usize, len: usize): u32;
@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(map: u32, kp: usize, kl: usize, retPtr: usize, retLen: usize): u32;
@external("env", "proxy_add_header_map_value")
export declare function proxy_add_header_map_value(map: u32, kp: usize, kl: usize, vp: usize, vl: usize): u32;
@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(map: u32, kp: usize, kl: usize, vp: usize, vl: usize): u32;
@external("env", "proxy_remove_header_map_value")
export declare function proxy_remove_header_map_value(map: u32, kp: usize, kl: usize): u32;
@external("env", "proxy_get_property")
export declare function proxy_get_property(pp: usize, pl: usize, retPtr: usize, retLen: usize): u32;
@external("env", "proxy_set_property")
export declare function proxy_set_property(pp: usize, pl: usize, vp: usize, vl: usize): u32;
@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(kp: usize, kl: usize, retPtr: usize, retLen: usize, retCas: usize): u32;
@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(kp: usize, kl: usize, vp: usize, vl: usize, cas: u32): u32;
@external("env", "proxy_register_shared_queue")
export declare function proxy_register_shared_queue(np: usize, nl: usize, retId: usize): u32;
@external("env", "proxy_resolve_shared_queue")
export declare function proxy_resolve_shared_queue(vp: usize, vl: usize, np: usize, nl: usize, retId: usize): u32;
@external("env", "proxy_enqueue_shared_queue")
export declare function proxy_enqueue_shared_queue(id: u32, vp: usize, vl: usize): u32;
@external("env", "proxy_dequeue_shared_queue")
export declare function proxy_dequeue_shared_queue(id: u32, retPtr: usize, retLen: usize): u32;
@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(stream: u32): u32;
@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(status: u32, dp: usize, dl: usize, bp: usize, bl: usize, hp: usize, hl: usize, grpc: i32): u32;
@external("env", "proxy_http_call")
export declare function proxy_http_call(up: usize, ul: usize, hp: usize, hl: usize, bp: usize, bl: usize, tp: usize, tl: usize, timeout: u32, retToken: usize): u32;
@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(ctx: u32): u32;
@external("env", "proxy_done")
export declare function proxy_done(): u32;
@external("env", "proxy_define_metric")
export declare function proxy_define_metric(kind: u32, np: usize, nl: usize, retId: usize): u32;
@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(id: u32, offset: i64): u32;
@external("env", "proxy_record_metric")
export declare function proxy_record_metric(id: u32, value: u64): u32;
@external("env", "proxy_get_metric")
export declare function proxy_get_metric(id: u32, ret: usize): u32;
