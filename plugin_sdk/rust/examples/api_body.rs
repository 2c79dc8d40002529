//! SDK test plugin, bodies: buffer the request body to its end, prepend/append to it;
//! upper-case the response body and drop its Content-Length.
use edge_proxy_wasm::*;

struct Root;
impl Context for Root {}
impl RootContext for Root {
    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Body))
    }
}

struct Body;
impl Context for Body {}
impl HttpContext for Body {
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let first = self.get_http_request_body(0, 1).unwrap_or_default();
        self.set_http_request_body(0, 0, b"[");
        self.set_http_request_body(body_size + 1, 0, b"]");
        self.set_http_request_header("x-first-byte", Some(&String::from_utf8_lossy(&first)));
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_header("content-length", None);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_response_body(0, body_size).unwrap_or_default();
        self.set_http_response_body(0, body_size, &body.to_ascii_uppercase());
        Action::Continue
    }
}

main! { set_root_context(|_| Box::new(Root)); }
