//! The smallest useful filter: adds a response header, the size reference for the SDK.
use edge_proxy_wasm::*;

struct Root;
impl Context for Root {}
impl RootContext for Root {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter))
    }
}

struct Filter;
impl Context for Filter {}
impl HttpContext for Filter {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.set_http_response_header("x-edge-filter", Some("rust"));
        Action::Continue
    }
}

main! {
    // only the callback it implements: requests and response bodies never enter the VM
    hooks: [on_http_response_headers];
    set_root_context(|_| Box::new(Root));
}
