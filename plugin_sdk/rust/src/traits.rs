//! The traits a plugin implements. Callbacks have defaults, so a plugin overrides only
//! what it needs. Helpers are marked `where Self: Sized` so they stay out of the trait
//! objects' vtables (and out of the module when unused).

use crate::hostcalls;
use crate::json::Json;
use crate::types::*;
use std::time::{Duration, SystemTime};

/// What root and HTTP contexts share: http_call responses, shared data, properties, time.
pub trait Context {
    /// The answer to `dispatch_http_call` with this `token_id`; `num_headers == 0` means
    /// the call failed (timeout, connection error, unknown upstream at run time).
    fn on_http_call_response(&mut self, _token_id: u32, _num_headers: usize, _body_size: usize, _num_trailers: usize) {}

    /// The stream (or plugin) is ending; return false to finish later with `done()`.
    fn on_done(&mut self) -> bool {
        true
    }

    fn log(&self, level: LogLevel, message: &str)
    where
        Self: Sized,
    {
        let _ = hostcalls::log(level, message);
    }

    fn get_current_time(&self) -> SystemTime
    where
        Self: Sized,
    {
        hostcalls::get_current_time()
    }

    /// A property by path, e.g. `&["request", "path"]`, `&["plugin_name"]`.
    fn get_property(&self, path: &[&str]) -> Option<Bytes>
    where
        Self: Sized,
    {
        hostcalls::get_property(path).ok().flatten()
    }

    fn get_property_string(&self, path: &[&str]) -> Option<String>
    where
        Self: Sized,
    {
        self.get_property(path).and_then(|b| String::from_utf8(b).ok())
    }

    fn set_property(&self, path: &[&str], value: Option<&[u8]>) -> Result<()>
    where
        Self: Sized,
    {
        hostcalls::set_property(path, value)
    }

    fn get_shared_data(&self, key: &str) -> (Option<Bytes>, Option<u32>)
    where
        Self: Sized,
    {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set_shared_data(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> Result<()>
    where
        Self: Sized,
    {
        hostcalls::set_shared_data(key, value, cas)
    }

    fn dispatch_http_call(
        &self,
        upstream: &str,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
        trailers: Vec<(&str, &str)>,
        timeout: Duration,
    ) -> Result<u32>
    where
        Self: Sized,
    {
        hostcalls::dispatch_http_call(upstream, &headers, body, &trailers, timeout)
    }

    fn get_http_call_response_headers(&self) -> Vec<(String, String)>
    where
        Self: Sized,
    {
        hostcalls::get_map(MapType::HttpCallResponseHeaders).unwrap_or_default()
    }

    fn get_http_call_response_header(&self, name: &str) -> Option<String>
    where
        Self: Sized,
    {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name).ok().flatten()
    }

    fn get_http_call_response_body(&self, start: usize, max_size: usize) -> Option<Bytes>
    where
        Self: Sized,
    {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, start, max_size).ok().flatten()
    }

    /// Marks a context whose `on_done` returned false as finished.
    fn done(&self)
    where
        Self: Sized,
    {
        let _ = hostcalls::done();
    }
}

/// One per plugin configuration: reads the configuration, owns shared state, creates an
/// `HttpContext` for each request.
pub trait RootContext: Context {
    /// `vm_config` of the bundle is available through `get_vm_configuration`.
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    /// The route's `conf` is available through `get_plugin_configuration`; return false
    /// to reject it (the host then refuses the whole configuration).
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        true
    }

    fn on_tick(&mut self) {}

    fn on_queue_ready(&mut self, _queue_id: u32) {}

    /// Returns the per-request filter, or `None` for a root-only plugin.
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        None
    }

    fn get_vm_configuration(&self) -> Option<Bytes>
    where
        Self: Sized,
    {
        hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX).ok().flatten()
    }

    fn get_plugin_configuration(&self) -> Option<Bytes>
    where
        Self: Sized,
    {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten()
    }

    /// The plugin configuration parsed as JSON: `Err` with a message naming the position
    /// when it is not valid JSON, `Ok(Json::Null)` when it is empty.
    fn get_plugin_configuration_json(&self) -> core::result::Result<Json, String>
    where
        Self: Sized,
    {
        match self.get_plugin_configuration() {
            None => Ok(Json::Null),
            Some(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Ok(Json::Null),
            Some(b) => Json::parse(&b).map_err(|e| e.to_string()),
        }
    }

    fn set_tick_period(&self, period: Duration)
    where
        Self: Sized,
    {
        let _ = hostcalls::set_tick_period(period);
    }
}

/// One per request: sees the request and response as they pass.
pub trait HttpContext: Context {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        Action::Continue
    }

    /// The last callback of a request, also after a local response.
    fn on_log(&mut self) {}

    // --- request ---

    /// Every request header including the pseudo-headers `:method`, `:path` (with the
    /// query), `:authority` and `:scheme`; names are lower-case.
    fn get_http_request_headers(&self) -> Vec<(String, String)>
    where
        Self: Sized,
    {
        hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn get_http_request_header(&self, name: &str) -> Option<String>
    where
        Self: Sized,
    {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name).ok().flatten()
    }

    /// Replaces (or with `None` removes) a request header; `:path`, `:method` and
    /// `:authority` rewrite the request itself.
    fn set_http_request_header(&self, name: &str, value: Option<&str>)
    where
        Self: Sized,
    {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value);
    }

    fn add_http_request_header(&self, name: &str, value: &str)
    where
        Self: Sized,
    {
        let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value);
    }

    fn set_http_request_headers(&self, headers: Vec<(&str, &str)>)
    where
        Self: Sized,
    {
        let _ = hostcalls::set_map(MapType::HttpRequestHeaders, &headers);
    }

    fn get_http_request_body(&self, start: usize, max_size: usize) -> Option<Bytes>
    where
        Self: Sized,
    {
        hostcalls::get_buffer(BufferType::HttpRequestBody, start, max_size).ok().flatten()
    }

    fn set_http_request_body(&self, start: usize, size: usize, value: &[u8])
    where
        Self: Sized,
    {
        let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, start, size, value);
    }

    fn method(&self) -> String
    where
        Self: Sized,
    {
        self.get_http_request_header(":method").unwrap_or_default()
    }

    /// The request path with its query string.
    fn path(&self) -> String
    where
        Self: Sized,
    {
        self.get_http_request_header(":path").unwrap_or_default()
    }

    fn authority(&self) -> String
    where
        Self: Sized,
    {
        self.get_http_request_header(":authority").unwrap_or_default()
    }

    fn resume_http_request(&self)
    where
        Self: Sized,
    {
        let _ = hostcalls::continue_stream(StreamType::HttpRequest);
    }

    // --- response ---

    /// Every response header, with `:status` first.
    fn get_http_response_headers(&self) -> Vec<(String, String)>
    where
        Self: Sized,
    {
        hostcalls::get_map(MapType::HttpResponseHeaders).unwrap_or_default()
    }

    fn get_http_response_header(&self, name: &str) -> Option<String>
    where
        Self: Sized,
    {
        hostcalls::get_map_value(MapType::HttpResponseHeaders, name).ok().flatten()
    }

    fn set_http_response_header(&self, name: &str, value: Option<&str>)
    where
        Self: Sized,
    {
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, value);
    }

    fn add_http_response_header(&self, name: &str, value: &str)
    where
        Self: Sized,
    {
        let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value);
    }

    fn get_http_response_body(&self, start: usize, max_size: usize) -> Option<Bytes>
    where
        Self: Sized,
    {
        hostcalls::get_buffer(BufferType::HttpResponseBody, start, max_size).ok().flatten()
    }

    fn set_http_response_body(&self, start: usize, size: usize, value: &[u8])
    where
        Self: Sized,
    {
        let _ = hostcalls::set_buffer(BufferType::HttpResponseBody, start, size, value);
    }

    fn resume_http_response(&self)
    where
        Self: Sized,
    {
        let _ = hostcalls::continue_stream(StreamType::HttpResponse);
    }

    /// Answers the client directly; the request ends here (no upstream, or no more of it).
    fn send_http_response(&self, status: u32, headers: Vec<(&str, &str)>, body: Option<&[u8]>)
    where
        Self: Sized,
    {
        let _ = hostcalls::send_http_response(status, &headers, body);
    }
}
