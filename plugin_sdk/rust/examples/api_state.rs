//! SDK test plugin, state: metrics of every type, shared data with CAS, shared queues,
//! ticks (each tick bumps a shared counter).
use edge_proxy_wasm::*;
use std::time::Duration;

struct Root {
    requests: u32,
    gauge: u32,
    sizes: u32,
}
impl Context for Root {}
impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.requests = hostcalls::define_metric(MetricType::Counter, "requests").unwrap_or(0);
        self.gauge = hostcalls::define_metric(MetricType::Gauge, "last_size").unwrap_or(0);
        self.sizes = hostcalls::define_metric(MetricType::Histogram, "sizes").unwrap_or(0);
        self.set_tick_period(Duration::from_millis(50));
        true
    }

    fn on_tick(&mut self) {
        let (value, cas) = self.get_shared_data("ticks");
        let n: u64 = value.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0);
        let _ = self.set_shared_data("ticks", Some((n + 1).to_string().as_bytes()), cas);
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(State { requests: self.requests, gauge: self.gauge, sizes: self.sizes }))
    }
}

struct State {
    requests: u32,
    gauge: u32,
    sizes: u32,
}
impl Context for State {}
impl HttpContext for State {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let _ = hostcalls::increment_metric(self.requests, 1);
        let size = self.path().len() as u64;
        let _ = hostcalls::record_metric(self.gauge, size);
        let _ = hostcalls::record_metric(self.sizes, size);
        let count = hostcalls::get_metric(self.requests).unwrap_or(0);
        self.set_http_request_header("x-requests", Some(&count.to_string()));

        // a write with the token just read succeeds; a second one with the same (now
        // stale) token must fail with CasMismatch
        let _ = self.set_shared_data("hits", Some(b"0"), None);
        let (_, cas) = self.get_shared_data("hits");
        let first = self.set_shared_data("hits", Some(b"1"), cas);
        let stale = self.set_shared_data("hits", Some(b"2"), cas);
        let cas_result = format!("{:?}/{:?}", first.err(), stale.err());
        self.set_http_request_header("x-cas", Some(&cas_result));

        let q = hostcalls::register_shared_queue("jobs").unwrap_or(0);
        let _ = hostcalls::enqueue_shared_queue(q, b"job-1");
        let got = hostcalls::dequeue_shared_queue(q).ok().flatten().unwrap_or_default();
        let empty = hostcalls::dequeue_shared_queue(q).map(|v| v.is_none()).unwrap_or(false);
        self.set_http_request_header("x-queue", Some(&format!("{}/{}", String::from_utf8_lossy(&got), empty)));
        let ticks = self.get_shared_data("ticks").0.unwrap_or_default();
        self.set_http_request_header("x-ticks", Some(&String::from_utf8_lossy(&ticks)));
        Action::Continue
    }
}

main! { set_root_context(|_| Box::new(Root { requests: 0, gauge: 0, sizes: 0 })); }
