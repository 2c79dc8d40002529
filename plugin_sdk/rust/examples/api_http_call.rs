//! SDK test plugin, http_call with a callback: the request waits for a call to the
//! upstream named in the configuration, then carries its status and body upstream.
use edge_proxy_wasm::*;
use std::rc::Rc;
use std::time::Duration;

struct Root {
    upstream: Rc<String>,
}
impl Context for Root {}
impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let conf = self.get_plugin_configuration().unwrap_or_default();
        self.upstream = Rc::new(String::from_utf8_lossy(&conf).into_owned());
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Call { upstream: self.upstream.clone(), token: 0 }))
    }
}

struct Call {
    upstream: Rc<String>,
    token: u32,
}
impl Context for Call {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _t: usize) {
        if token != self.token || num_headers == 0 {
            self.send_http_response(503, vec![], Some(b"call failed"));
            return;
        }
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
        self.set_http_request_header("x-call-status", Some(&status));
        self.set_http_request_header("x-call-body-len", Some(&body.len().to_string()));
        self.resume_http_request();
    }
}
impl HttpContext for Call {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let headers = vec![(":method", "GET"), (":path", "/check"), (":authority", "auth"), ("x-from", "sdk")];
        match self.dispatch_http_call(&self.upstream, headers, None, vec![], Duration::from_secs(5)) {
            Ok(token) => {
                self.token = token;
                Action::Pause
            }
            Err(e) => {
                self.set_http_request_header("x-call-error", Some(&e.to_string()));
                Action::Continue
            }
        }
    }
}

main! { set_root_context(|_| Box::new(Root { upstream: Rc::new(String::new()) })); }
