//! edge-proxy-wasm: write proxy-wasm (ABI 0.2.1) plugins for the edge gateway in Rust,
//! with nothing but std. The same module runs in Envoy.
//!
//! ```ignore
//! use edge_proxy_wasm::*;
//!
//! struct Root;
//! impl Context for Root {}
//! impl RootContext for Root {
//!     fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
//!         Some(Box::new(Filter))
//!     }
//! }
//! struct Filter;
//! impl Context for Filter {}
//! impl HttpContext for Filter {
//!     fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
//!         self.set_http_request_header("x-hello", Some("edge"));
//!         Action::Continue
//!     }
//! }
//! main! { set_root_context(|_| Box::new(Root)); }
//! ```

mod allocator;
mod dispatcher;
mod ffi;
pub mod hostcalls;
pub mod json;
pub mod pairs;
mod traits;
mod types;

pub use dispatcher::set_root_context;

/// What `main!` exports; not part of the API.
#[doc(hidden)]
pub mod __hooks {
    pub use crate::dispatcher::{
        proxy_on_done, proxy_on_http_call_response, proxy_on_log, proxy_on_queue_ready,
        proxy_on_request_body,
        proxy_on_request_headers, proxy_on_request_trailers, proxy_on_response_body,
        proxy_on_response_headers, proxy_on_response_trailers, proxy_on_tick,
    };
}
pub use json::Json;
pub use traits::{Context, HttpContext, RootContext};
pub use types::{Action, BufferType, Bytes, Error, LogLevel, MapType, MetricType, StreamType};

/// What hostcalls return. Not named `Result` at the crate root, so `use
/// edge_proxy_wasm::*` does not shadow `std::result::Result` in plugin code.
pub type HostResult<T> = types::Result<T>;

/// Logs a panic's message through `proxy_log` at critical level before the trap, so a
/// plugin author sees why the VM died (`edge plugin test` and the gateway log show it).
pub fn set_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        let _ = hostcalls::log(LogLevel::Critical, &msg);
    }));
}

/// The module's start function: runs `$body` once when the VM starts (register the root
/// context there). Exported as `_initialize`, which hosts call before anything else.
///
/// With a leading `hooks: [...];` only the listed optional callbacks are exported:
///
/// ```ignore
/// main! {
///     hooks: [on_http_request_headers, on_http_request_body];
///     set_root_context(|_| Box::new(Root));
/// }
/// ```
///
/// The host skips every phase whose callback the module does not export, so a plugin
/// that lists only what it implements costs requests less: no response callbacks means
/// no calls into the VM for the response, and without `on_http_response_body` the
/// gateway keeps the upstream's response framing instead of re-chunking it. A method
/// implemented but not listed is never called. The names are the trait methods:
/// `on_http_request_headers`, `on_http_request_body`, `on_http_request_trailers`,
/// `on_http_response_headers`, `on_http_response_body`, `on_http_response_trailers`,
/// `on_log`, `on_done`, `on_http_call_response`, `on_tick`, `on_queue_ready`.
/// `on_vm_start`, `on_configure` and context creation are always exported (a host
/// treats a missing `proxy_on_done` as "done", which is what the trait's default
/// answers). Without `hooks`, every callback is exported (the safe default).
#[macro_export]
macro_rules! main {
    (hooks: [$($hook:ident),* $(,)?]; $($body:tt)*) => {
        #[cfg(target_os = "wasi")]
        extern "C" {
            fn __wasm_call_ctors();
        }

        #[no_mangle]
        pub extern "C" fn _initialize() {
            #[cfg(target_os = "wasi")]
            unsafe {
                __wasm_call_ctors();
            }
            $crate::set_panic_hook();
            $($body)*
        }

        $($crate::__export_hook!($hook);)*
    };
    ($($body:tt)*) => {
        $crate::main! {
            hooks: [
                on_http_request_headers, on_http_request_body, on_http_request_trailers,
                on_http_response_headers, on_http_response_body, on_http_response_trailers,
                on_log, on_done, on_http_call_response, on_tick, on_queue_ready,
            ];
            $($body)*
        }
    };
}

/// One optional `proxy_on_*` export, by the name of the trait method it calls.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_hook {
    (on_http_request_headers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_headers(id: u32, n: usize, eos: u32) -> u32 {
            $crate::__hooks::proxy_on_request_headers(id, n, eos)
        }
    };
    (on_http_request_body) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_body(id: u32, size: usize, eos: u32) -> u32 {
            $crate::__hooks::proxy_on_request_body(id, size, eos)
        }
    };
    (on_http_request_trailers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_trailers(id: u32, n: usize) -> u32 {
            $crate::__hooks::proxy_on_request_trailers(id, n)
        }
    };
    (on_http_response_headers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_headers(id: u32, n: usize, eos: u32) -> u32 {
            $crate::__hooks::proxy_on_response_headers(id, n, eos)
        }
    };
    (on_http_response_body) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_body(id: u32, size: usize, eos: u32) -> u32 {
            $crate::__hooks::proxy_on_response_body(id, size, eos)
        }
    };
    (on_http_response_trailers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_trailers(id: u32, n: usize) -> u32 {
            $crate::__hooks::proxy_on_response_trailers(id, n)
        }
    };
    (on_done) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_done(id: u32) -> u32 {
            $crate::__hooks::proxy_on_done(id)
        }
    };
    (on_log) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_log(id: u32) {
            $crate::__hooks::proxy_on_log(id)
        }
    };
    (on_http_call_response) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_http_call_response(
            id: u32,
            token: u32,
            headers: usize,
            body: usize,
            trailers: usize,
        ) {
            $crate::__hooks::proxy_on_http_call_response(id, token, headers, body, trailers)
        }
    };
    (on_tick) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_tick(id: u32) {
            $crate::__hooks::proxy_on_tick(id)
        }
    };
    (on_queue_ready) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_queue_ready(id: u32, queue: u32) {
            $crate::__hooks::proxy_on_queue_ready(id, queue)
        }
    };
    ($other:ident) => {
        compile_error!(concat!(
            "main!: unknown hook `",
            stringify!($other),
            "` (expected on_http_request_headers, on_http_request_body, \
             on_http_request_trailers, on_http_response_headers, on_http_response_body, \
             on_http_response_trailers, on_log, on_http_call_response, on_tick, on_queue_ready)"
        ));
    };
}

/// Logs at the given level with `format!` arguments, formatting only when the host's log
/// level lets the line through.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)*) => {{
        let level: $crate::LogLevel = $level;
        if $crate::hostcalls::get_log_level().map(|l| level >= l).unwrap_or(true) {
            let _ = $crate::hostcalls::log(level, &format!($($arg)*));
        }
    }};
}
