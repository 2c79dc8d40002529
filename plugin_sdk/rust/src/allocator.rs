//! The allocator export the host calls to hand us memory (header maps, bodies, properties).
//! wasm32-unknown-unknown exports it as `malloc` (what every host looks up first); on WASI,
//! libc already owns `malloc`, so it is `proxy_on_memory_allocate` there.

#[cfg_attr(
    all(target_arch = "wasm32", not(target_os = "wasi")),
    export_name = "malloc"
)]
#[cfg_attr(
    any(not(target_arch = "wasm32"), target_os = "wasi"),
    export_name = "proxy_on_memory_allocate"
)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buf: Vec<u8> = Vec::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}
