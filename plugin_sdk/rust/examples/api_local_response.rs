//! SDK test plugin, local responses: from the request phase (with headers and body) and
//! from the response phase; and a crash (`/crash`), to see how a trap is reported.
use edge_proxy_wasm::*;

struct Root;
impl Context for Root {}
impl RootContext for Root {
    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Local { late: false }))
    }
}

struct Local {
    late: bool,
}
impl Context for Local {}
impl HttpContext for Local {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let path = self.path();
        if path.starts_with("/deny") {
            self.send_http_response(418, vec![("x-why", "teapot"), ("content-type", "text/plain")], Some(b"short and stout"));
            return Action::Pause;
        }
        if path.starts_with("/crash") {
            // a panic becomes a trap; the SDK's panic hook logs it first
            let items: Vec<u32> = Vec::new();
            let n = path.len();
            return if items[n] > 0 { Action::Pause } else { Action::Continue };
        }
        self.late = path.starts_with("/late");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if self.late {
            self.send_http_response(503, vec![("x-late", "1")], Some(b"replaced"));
            return Action::Pause;
        }
        Action::Continue
    }
}

main! { set_root_context(|_| Box::new(Root)); }
