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
#[macro_export]
macro_rules! main {
    ($($body:tt)*) => {
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
