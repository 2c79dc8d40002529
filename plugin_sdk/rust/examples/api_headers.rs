//! SDK test plugin, header maps: pseudo-headers, get/set/add/remove, whole-map access,
//! rewriting :path and :status. Reports what it saw in `x-*` headers.
use edge_proxy_wasm::*;

struct Root;
impl Context for Root {}
impl RootContext for Root {
    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Headers { set_status: None }))
    }
}

struct Headers {
    set_status: Option<String>,
}
impl Context for Headers {}
impl HttpContext for Headers {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        let seen = format!(
            "{} {} {} {}",
            self.method(),
            self.path(),
            self.authority(),
            self.get_http_request_header(":scheme").unwrap_or_default()
        );
        let all = self.get_http_request_headers();
        self.set_http_request_header("x-seen", Some(&seen));
        self.set_http_request_header("x-count", Some(&format!("{}/{}", all.len(), num_headers)));
        self.set_http_request_header("x-eos", Some(if end_of_stream { "1" } else { "0" }));
        self.add_http_request_header("x-added", "one");
        self.add_http_request_header("x-added", "two");
        self.set_http_request_header("x-remove-me", None);
        let missing = self.get_http_request_header("x-not-there").is_none();
        self.set_http_request_header("x-missing-is-none", Some(if missing { "1" } else { "0" }));
        if let Some(p) = self.get_http_request_header("x-rewrite-path") {
            self.set_http_request_header(":path", Some(&p));
        }
        self.set_status = self.get_http_request_header("x-set-status");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        self.set_http_response_header("x-status-seen", Some(&status));
        self.add_http_response_header("x-resp", "1");
        self.set_http_response_header("x-drop", None);
        let names: Vec<String> = self.get_http_response_headers().into_iter().map(|(k, _)| k).collect();
        self.set_http_response_header("x-resp-names", Some(&names.join(",")));
        if let Some(s) = self.set_status.take() {
            self.set_http_response_header(":status", Some(&s));
        }
        Action::Continue
    }
}

main! { set_root_context(|_| Box::new(Root)); }
