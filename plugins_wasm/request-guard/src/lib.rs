//! request-guard: a compact WAF for the edge gateway (proxy-wasm, Rust).
//!
//! Checks, in order: method allowlist (405), header count/size limits (431), signature
//! rules over path, query, header values and optionally the body (`block_status`).
//! `mode: monitor` logs, counts and tags instead of blocking. See README.md.

pub mod config;
pub mod matcher;
pub mod rules;

use config::{Config, Mode};
use edge_proxy_wasm::*;
use rules::Target;
use std::rc::Rc;

struct Metrics {
    matches: u32,
    blocked: u32,
    /// one counter per rule, in `Config::rules` order
    per_rule: Vec<u32>,
    method: u32,
    header_limits: u32,
}

struct Guard {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
}

impl Context for Guard {}

fn counter(name: &str) -> u32 {
    hostcalls::define_metric(MetricType::Counter, name).unwrap_or(0)
}

impl RootContext for Guard {
    fn on_configure(&mut self, _size: usize) -> bool {
        let parsed = self
            .get_plugin_configuration_json()
            .and_then(|json| Config::parse(&json));
        match parsed {
            Ok(c) => {
                let per_rule = c
                    .rules
                    .iter()
                    .map(|r| counter(&format!("matches_{}", r.id.replace('-', "_"))))
                    .collect();
                self.metrics = Some(Rc::new(Metrics {
                    matches: counter("matches"),
                    blocked: counter("blocked"),
                    per_rule,
                    method: counter("method_rejected"),
                    header_limits: counter("header_limit_rejected"),
                }));
                self.config = Some(Rc::new(c));
                true
            }
            Err(e) => {
                self.log(LogLevel::Error, &format!("request-guard: {}", e));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        match (&self.config, &self.metrics) {
            (Some(c), Some(m)) => Some(Box::new(Filter {
                config: c.clone(),
                metrics: m.clone(),
                body_checked: false,
                tags: Vec::new(),
            })),
            _ => None,
        }
    }
}

struct Filter {
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    body_checked: bool,
    tags: Vec<String>,
}

impl Context for Filter {}

enum Verdict {
    Pass,
    Blocked,
}

impl Filter {
    fn bump(&self, id: u32) {
        let _ = hostcalls::increment_metric(id, 1);
    }

    /// Answers `status` in block mode; in monitor mode only records the finding.
    fn reject(&mut self, status: u32, reason: &str, detail: &str) -> Verdict {
        self.bump(self.metrics.matches);
        let blocking = self.config.mode == Mode::Block;
        log!(
            LogLevel::Warn,
            "request-guard: {} {}{}",
            if blocking { "blocked" } else { "monitored" },
            reason,
            detail
        );
        if !blocking {
            self.tags.push(reason.split(' ').next().unwrap_or(reason).to_string());
            return Verdict::Pass;
        }
        self.bump(self.metrics.blocked);
        let body = self.config.block_body.clone();
        let ctype = self.config.block_content_type.clone();
        self.send_http_response(status, vec![("content-type", ctype.as_str())], Some(body.as_bytes()));
        Verdict::Blocked
    }

    fn check_rules(&mut self, target: Target, raw: &[u8], header: Option<&[u8]>) -> Verdict {
        let idx = match self.config.rule_set.first_match(target, raw) {
            None => return Verdict::Pass,
            Some(idx) => idx,
        };
        let config = self.config.clone();
        let rule = &config.rules[idx];
        if let Some(id) = self.metrics.per_rule.get(idx) {
            self.bump(*id);
        }
        let detail = match header {
            Some(h) => format!(" header={}", String::from_utf8_lossy(h)),
            None => String::new(),
        };
        self.reject(
            config.block_status,
            &format!("rule={} target={}", rule.id, target.name()),
            &detail,
        )
    }

    fn check_headers(&mut self) -> Verdict {
        let config = self.config.clone();
        // one hostcall for the whole map, read in place (no copy per header)
        let raw = hostcalls::get_map_raw(MapType::HttpRequestHeaders).unwrap_or_default();
        // read twice in place (no Vec of pairs)
        let headers = || pairs::iter(&raw);
        let mut method: &[u8] = b"";
        let mut path: &[u8] = b"";
        let mut count = 0usize;
        let mut total = 0usize;
        for (k, v) in headers() {
            if k.first() == Some(&b':') {
                match k {
                    b":method" => method = v,
                    b":path" => path = v,
                    _ => {}
                }
                continue;
            }
            count += 1;
            let size = k.len() + v.len();
            total += size;
            if size > config.max_header_size {
                self.bump(self.metrics.header_limits);
                let name = String::from_utf8_lossy(k).into_owned();
                if let Verdict::Blocked = self.reject(431, "header_too_large", &format!(" header={}", name)) {
                    return Verdict::Blocked;
                }
            }
        }
        if count > config.max_header_count || total > config.max_headers_total {
            self.bump(self.metrics.header_limits);
            let detail = format!(" count={} bytes={}", count, total);
            if let Verdict::Blocked = self.reject(431, "headers_over_limit", &detail) {
                return Verdict::Blocked;
            }
        }
        if !config.allowed_methods.is_empty()
            && !config.allowed_methods.iter().any(|m| m.as_bytes() == method)
        {
            self.bump(self.metrics.method);
            let detail = format!(" method={}", String::from_utf8_lossy(method));
            if let Verdict::Blocked = self.reject(405, "method_not_allowed", &detail) {
                return Verdict::Blocked;
            }
        }
        let (p, q) = match path.iter().position(|&c| c == b'?') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (path, &b""[..]),
        };
        if let Verdict::Blocked = self.check_rules(Target::Path, p, None) {
            return Verdict::Blocked;
        }
        if !q.is_empty() {
            if let Verdict::Blocked = self.check_rules(Target::Query, q, None) {
                return Verdict::Blocked;
            }
        }
        if !config.rule_set.inspects(Target::Header) {
            return Verdict::Pass;
        }
        for (k, v) in headers() {
            if k.first() == Some(&b':') {
                continue;
            }
            if config.ignore_headers.iter().any(|h| h.as_bytes() == k) {
                continue;
            }
            if let Verdict::Blocked = self.check_rules(Target::Header, v, Some(k)) {
                return Verdict::Blocked;
            }
        }
        Verdict::Pass
    }

    fn tag_upstream(&mut self) {
        if let (Some(h), false) = (&self.config.tag_header, self.tags.is_empty()) {
            let value = self.tags.join(",");
            self.set_http_request_header(h, Some(&value));
        }
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if let Verdict::Blocked = self.check_headers() {
            return Action::Pause;
        }
        self.tag_upstream();
        if self.config.inspect_body && !end_of_stream {
            // hold the request until its body has been looked at
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.config.inspect_body || self.body_checked {
            return Action::Continue;
        }
        let limit = self.config.max_body_inspect_bytes;
        if body_size < limit && !end_of_stream {
            return Action::Pause;
        }
        self.body_checked = true;
        let body = self.get_http_request_body(0, limit).unwrap_or_default();
        let before = self.tags.len();
        if let Verdict::Blocked = self.check_rules(Target::Body, &body, None) {
            return Action::Pause;
        }
        if self.tags.len() != before {
            self.tag_upstream();
        }
        Action::Continue
    }
}

main! {
    // request phases only: the response keeps its upstream framing, untouched by the VM
    hooks: [on_http_request_headers, on_http_request_body];
    set_root_context(|_| Box::new(Guard { config: None, metrics: None }));
}
