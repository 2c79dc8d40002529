//! Raw proxy-wasm ABI 0.2.1 host functions. Nothing outside `hostcalls` touches these.
//!
//! On a non-wasm target (the SDK's own `cargo test`), every import is replaced by a stub
//! answering UNIMPLEMENTED so the pure parts (JSON, header-map codec) test natively.

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
extern "C" {
    pub fn proxy_log(level: u32, ptr: *const u8, len: usize) -> u32;
    pub fn proxy_get_log_level(ret: *mut u32) -> u32;
    pub fn proxy_get_current_time_nanoseconds(ret: *mut u64) -> u32;
    pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    pub fn proxy_get_buffer_bytes(
        buf: u32,
        start: usize,
        max: usize,
        ret_ptr: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
    pub fn proxy_set_buffer_bytes(
        buf: u32,
        start: usize,
        size: usize,
        ptr: *const u8,
        len: usize,
    ) -> u32;
    pub fn proxy_get_buffer_status(buf: u32, ret_len: *mut usize, ret_flags: *mut u32) -> u32;
    pub fn proxy_get_header_map_size(map: u32, ret: *mut usize) -> u32;
    pub fn proxy_get_header_map_pairs(map: u32, ret_ptr: *mut *mut u8, ret_len: *mut usize)
        -> u32;
    pub fn proxy_set_header_map_pairs(map: u32, ptr: *const u8, len: usize) -> u32;
    pub fn proxy_get_header_map_value(
        map: u32,
        kp: *const u8,
        kl: usize,
        ret_ptr: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
    pub fn proxy_add_header_map_value(
        map: u32,
        kp: *const u8,
        kl: usize,
        vp: *const u8,
        vl: usize,
    ) -> u32;
    pub fn proxy_replace_header_map_value(
        map: u32,
        kp: *const u8,
        kl: usize,
        vp: *const u8,
        vl: usize,
    ) -> u32;
    pub fn proxy_remove_header_map_value(map: u32, kp: *const u8, kl: usize) -> u32;
    pub fn proxy_get_property(
        pp: *const u8,
        pl: usize,
        ret_ptr: *mut *mut u8,
        ret_len: *mut usize,
    ) -> u32;
    pub fn proxy_set_property(pp: *const u8, pl: usize, vp: *const u8, vl: usize) -> u32;
    pub fn proxy_get_shared_data(
        kp: *const u8,
        kl: usize,
        ret_vp: *mut *mut u8,
        ret_vl: *mut usize,
        ret_cas: *mut u32,
    ) -> u32;
    pub fn proxy_set_shared_data(
        kp: *const u8,
        kl: usize,
        vp: *const u8,
        vl: usize,
        cas: u32,
    ) -> u32;
    pub fn proxy_register_shared_queue(np: *const u8, nl: usize, ret_id: *mut u32) -> u32;
    pub fn proxy_resolve_shared_queue(
        vp: *const u8,
        vl: usize,
        np: *const u8,
        nl: usize,
        ret_id: *mut u32,
    ) -> u32;
    pub fn proxy_enqueue_shared_queue(id: u32, vp: *const u8, vl: usize) -> u32;
    pub fn proxy_dequeue_shared_queue(id: u32, ret_ptr: *mut *mut u8, ret_len: *mut usize)
        -> u32;
    pub fn proxy_continue_stream(stream: u32) -> u32;
    pub fn proxy_close_stream(stream: u32) -> u32;
    pub fn proxy_send_local_response(
        status: u32,
        dp: *const u8,
        dl: usize,
        bp: *const u8,
        bl: usize,
        hp: *const u8,
        hl: usize,
        grpc_status: i32,
    ) -> u32;
    pub fn proxy_http_call(
        up: *const u8,
        ul: usize,
        hp: *const u8,
        hl: usize,
        bp: *const u8,
        bl: usize,
        tp: *const u8,
        tl: usize,
        timeout: u32,
        ret_token: *mut u32,
    ) -> u32;
    pub fn proxy_set_effective_context(ctx: u32) -> u32;
    pub fn proxy_done() -> u32;
    pub fn proxy_define_metric(kind: u32, np: *const u8, nl: usize, ret_id: *mut u32) -> u32;
    pub fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    pub fn proxy_record_metric(id: u32, value: u64) -> u32;
    pub fn proxy_get_metric(id: u32, ret: *mut u64) -> u32;
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    //! Stubs so the crate links on the build machine for unit tests.
    #![allow(clippy::missing_safety_doc)]
    const UNIMPLEMENTED: u32 = 12;
    macro_rules! stub {
        ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
            $(#[allow(unused_variables)]
            pub unsafe fn $name($($arg: $ty),*) -> u32 { UNIMPLEMENTED })*
        };
    }
    stub! {
        proxy_log(level: u32, ptr: *const u8, len: usize);
        proxy_get_log_level(ret: *mut u32);
        proxy_get_current_time_nanoseconds(ret: *mut u64);
        proxy_set_tick_period_milliseconds(period: u32);
        proxy_get_buffer_bytes(buf: u32, start: usize, max: usize, rp: *mut *mut u8, rl: *mut usize);
        proxy_set_buffer_bytes(buf: u32, start: usize, size: usize, ptr: *const u8, len: usize);
        proxy_get_buffer_status(buf: u32, rl: *mut usize, rf: *mut u32);
        proxy_get_header_map_size(map: u32, ret: *mut usize);
        proxy_get_header_map_pairs(map: u32, rp: *mut *mut u8, rl: *mut usize);
        proxy_set_header_map_pairs(map: u32, ptr: *const u8, len: usize);
        proxy_get_header_map_value(map: u32, kp: *const u8, kl: usize, rp: *mut *mut u8, rl: *mut usize);
        proxy_add_header_map_value(map: u32, kp: *const u8, kl: usize, vp: *const u8, vl: usize);
        proxy_replace_header_map_value(map: u32, kp: *const u8, kl: usize, vp: *const u8, vl: usize);
        proxy_remove_header_map_value(map: u32, kp: *const u8, kl: usize);
        proxy_get_property(pp: *const u8, pl: usize, rp: *mut *mut u8, rl: *mut usize);
        proxy_set_property(pp: *const u8, pl: usize, vp: *const u8, vl: usize);
        proxy_get_shared_data(kp: *const u8, kl: usize, rp: *mut *mut u8, rl: *mut usize, rc: *mut u32);
        proxy_set_shared_data(kp: *const u8, kl: usize, vp: *const u8, vl: usize, cas: u32);
        proxy_register_shared_queue(np: *const u8, nl: usize, rid: *mut u32);
        proxy_resolve_shared_queue(vp: *const u8, vl: usize, np: *const u8, nl: usize, rid: *mut u32);
        proxy_enqueue_shared_queue(id: u32, vp: *const u8, vl: usize);
        proxy_dequeue_shared_queue(id: u32, rp: *mut *mut u8, rl: *mut usize);
        proxy_continue_stream(stream: u32);
        proxy_close_stream(stream: u32);
        proxy_send_local_response(status: u32, dp: *const u8, dl: usize, bp: *const u8, bl: usize, hp: *const u8, hl: usize, grpc: i32);
        proxy_http_call(up: *const u8, ul: usize, hp: *const u8, hl: usize, bp: *const u8, bl: usize, tp: *const u8, tl: usize, timeout: u32, rt: *mut u32);
        proxy_set_effective_context(ctx: u32);
        proxy_done();
        proxy_define_metric(kind: u32, np: *const u8, nl: usize, rid: *mut u32);
        proxy_increment_metric(id: u32, offset: i64);
        proxy_record_metric(id: u32, value: u64);
        proxy_get_metric(id: u32, ret: *mut u64);
    }
}
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;
