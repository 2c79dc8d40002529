//! json-redact: masks configured JSON fields in response bodies (proxy-wasm, Rust).
//!
//! A JSON response (by Content-Type, identity encoding) is held and buffered up to
//! `max_body_bytes`, rewritten once complete, and sent with a corrected Content-Length.
//! Anything else streams through untouched. See README.md.

pub mod redact;

use edge_proxy_wasm::*;
use redact::{parse_path, Path};
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    /// 502: the response could not be checked, so it is not sent (no PII leaks)
    Reject,
    /// send the response unchanged (availability over confidentiality)
    Pass,
}

struct Config {
    paths: Vec<Path>,
    mask: String,
    max_body_bytes: usize,
    content_types: Vec<String>,
    on_error: OnError,
}

const KNOWN: &[&str] = &["paths", "mask", "max_body_bytes", "content_types", "on_error"];

fn parse_config(conf: &Json) -> Result<Config, String> {
    let members = match conf.as_object() {
        Some(m) => m,
        None => return Err("configuration must be a JSON object".to_string()),
    };
    for (k, _) in members {
        if !KNOWN.contains(&k.as_str()) {
            return Err(format!("config field '{}': unknown field", k));
        }
    }
    let mut paths = Vec::new();
    match conf.get("paths").and_then(|v| v.as_array()) {
        Some(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let text = item
                    .as_str()
                    .ok_or_else(|| format!("config field 'paths[{}]': expected a string", i))?;
                paths.push(parse_path(text).map_err(|e| format!("config field 'paths[{}]': {}", i, e))?);
            }
        }
        _ => return Err("config field 'paths': expected a non-empty list of dotted paths".to_string()),
    }
    let mask = match conf.get("mask") {
        None => "***".to_string(),
        Some(v) => v
            .as_str()
            .ok_or("config field 'mask': expected a string")?
            .to_string(),
    };
    let max_body_bytes = match conf.get("max_body_bytes") {
        None => 1 << 20,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=(64 << 20)).contains(&n) => n as usize,
            _ => return Err("config field 'max_body_bytes': expected an integer from 1 to 67108864".to_string()),
        },
    };
    let content_types = match conf.get("content_types") {
        None => vec!["application/json".to_string(), "+json".to_string()],
        Some(v) => {
            let items = v.as_array().ok_or("config field 'content_types': expected a list of strings")?;
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if !s.is_empty() => out.push(s.to_ascii_lowercase()),
                    _ => return Err(format!("config field 'content_types[{}]': expected a media type", i)),
                }
            }
            out
        }
    };
    let on_error = match conf.get("on_error").map(|v| v.as_str()) {
        None | Some(Some("reject")) => OnError::Reject,
        Some(Some("pass")) => OnError::Pass,
        _ => return Err("config field 'on_error': expected \"reject\" or \"pass\"".to_string()),
    };
    Ok(Config { paths, mask, max_body_bytes, content_types, on_error })
}

/// True when `content_type` (its media type part) matches one of the configured types:
/// an exact type, or a `+json`-style suffix.
fn is_json(content_type: &str, types: &[String]) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    types.iter().any(|t| if t.starts_with('+') { media.ends_with(t.as_str()) } else { media == *t })
}

struct Metrics {
    redacted: u32,
    rejected: u32,
    passed: u32,
}

struct Root {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let parsed = self.get_plugin_configuration_json().and_then(|j| parse_config(&j));
        match parsed {
            Ok(c) => {
                let counter = |n: &str| hostcalls::define_metric(MetricType::Counter, n).unwrap_or(0);
                self.metrics = Some(Rc::new(Metrics {
                    redacted: counter("fields_redacted"),
                    rejected: counter("responses_rejected"),
                    passed: counter("responses_passed_unchecked"),
                }));
                self.config = Some(Rc::new(c));
                true
            }
            Err(e) => {
                self.log(LogLevel::Error, &format!("json-redact: {}", e));
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        match (&self.config, &self.metrics) {
            (Some(c), Some(m)) => Some(Box::new(Redact {
                config: c.clone(),
                metrics: m.clone(),
                active: false,
                dropping: false,
            })),
            _ => None,
        }
    }
}

struct Redact {
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    /// this response is JSON and is being buffered for redaction
    active: bool,
    /// the body failed the check after the headers may have left: send no more of it
    dropping: bool,
}

impl Context for Redact {}

impl Redact {
    /// The body could not be checked (too large, not JSON): apply `on_error`.
    fn fail(&mut self, reason: &str, in_body: bool) -> Action {
        self.active = false;
        match self.config.on_error {
            OnError::Pass => {
                let _ = hostcalls::increment_metric(self.metrics.passed, 1);
                log!(LogLevel::Warn, "json-redact: passing response unchanged: {}", reason);
                Action::Continue
            }
            OnError::Reject => {
                let _ = hostcalls::increment_metric(self.metrics.rejected, 1);
                log!(LogLevel::Warn, "json-redact: rejecting response: {}", reason);
                // a host that still holds the response headers answers 502 instead ...
                self.send_http_response(
                    502,
                    vec![("content-type", "text/plain; charset=utf-8")],
                    Some(b"upstream response could not be redacted\n"),
                );
                if in_body {
                    // ... one that already sent them must not get the unchecked bytes: the
                    // body is dropped from here on (the client sees it cut short)
                    self.dropping = true;
                    self.set_http_response_body(0, usize::MAX, b"");
                    return Action::Continue;
                }
                Action::Pause
            }
        }
    }
}

impl HttpContext for Redact {
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            return Action::Continue;
        }
        let ctype = self.get_http_response_header("content-type").unwrap_or_default();
        if !is_json(&ctype, &self.config.content_types) {
            return Action::Continue;
        }
        if let Some(enc) = self.get_http_response_header("content-encoding") {
            if !enc.trim().eq_ignore_ascii_case("identity") {
                return self.fail("content-encoding is not identity", false);
            }
        }
        if let Some(len) = self.get_http_response_header("content-length") {
            match len.trim().parse::<usize>() {
                Ok(n) if n > self.config.max_body_bytes => {
                    return self.fail("body larger than max_body_bytes", false)
                }
                _ => {}
            }
        }
        self.active = true;
        // The new length is known only at the end. Hosts that hold paused headers (Envoy)
        // get the exact Content-Length then; hosts that send headers before the body
        // (edge) must not announce the old one, so it goes now and they frame the
        // response themselves (chunked).
        self.set_http_response_header("content-length", None);
        Action::Pause
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.dropping {
            self.set_http_response_body(0, usize::MAX, b"");
            return Action::Continue;
        }
        if !self.active {
            return Action::Continue;
        }
        if body_size > self.config.max_body_bytes {
            return self.fail("body larger than max_body_bytes", true);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.active = false;
        let body = self.get_http_response_body(0, body_size).unwrap_or_default();
        match redact::redact(&body, &self.config.paths, &self.config.mask) {
            Ok((out, count)) => {
                if count > 0 {
                    let _ = hostcalls::increment_metric(self.metrics.redacted, count as i64);
                    self.set_http_response_body(0, body_size, &out);
                }
                let len = out.len().to_string();
                self.set_http_response_header("content-length", Some(&len));
                Action::Continue
            }
            Err(e) => self.fail(&format!("body is not valid JSON ({})", e), true),
        }
    }
}

main! {
    // response phases only: requests never enter the VM past creating the context
    hooks: [on_http_response_headers, on_http_response_body];
    set_root_context(|_| Box::new(Root { config: None, metrics: None }));
}
