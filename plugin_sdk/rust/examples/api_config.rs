//! SDK test plugin, configuration, properties and logging: the VM and plugin
//! configuration (JSON reader), properties by path, log levels, a refused configuration.
use edge_proxy_wasm::*;
use std::rc::Rc;

struct Root {
    vm: String,
    greeting: Rc<String>,
}
impl Context for Root {}
impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        self.vm = String::from_utf8(self.get_vm_configuration().unwrap_or_default()).unwrap_or_default();
        self.log(LogLevel::Info, &format!("vm started with '{}'", self.vm));
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let conf = match self.get_plugin_configuration_json() {
            Ok(c) => c,
            Err(e) => {
                self.log(LogLevel::Error, &e);
                return false;
            }
        };
        if conf.get("fail").and_then(|v| v.as_bool()) == Some(true) {
            self.log(LogLevel::Error, "refusing: fail is true");
            return false;
        }
        let greeting = conf.get("greeting").and_then(|v| v.as_str()).unwrap_or("none");
        let n = conf.get("n").and_then(|v| v.as_u64()).unwrap_or(0);
        let items = conf.get("items").and_then(|v| v.as_array()).map(|a| a.len()).unwrap_or(0);
        self.greeting = Rc::new(format!("{} n={} items={} json={}", greeting, n, items, conf.to_json_string()));
        log!(LogLevel::Debug, "configured: {}", self.greeting);
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Conf { greeting: self.greeting.clone(), vm: self.vm.clone() }))
    }
}

struct Conf {
    greeting: Rc<String>,
    vm: String,
}
impl Context for Conf {}
impl HttpContext for Conf {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_request_header("x-greeting", Some(&self.greeting));
        self.set_http_request_header("x-vm-config", Some(&self.vm));
        for (header, path) in [
            ("x-plugin-name", &["plugin_name"][..]),
            ("x-req-path", &["request", "path"][..]),
            ("x-req-method", &["request", "method"][..]),
            ("x-tenant", &["edge", "tenant"][..]),
        ] {
            let v = self.get_property_string(path).unwrap_or_else(|| "-".to_string());
            self.set_http_request_header(header, Some(&v));
        }
        let missing = self.get_property(&["no", "such", "property"]).is_none();
        self.set_http_request_header("x-missing-property", Some(if missing { "none" } else { "some" }));
        let level = hostcalls::get_log_level().map(|l| format!("{:?}", l)).unwrap_or_default();
        self.set_http_request_header("x-log-level", Some(&level));
        self.log(LogLevel::Warn, "warn line");
        self.log(LogLevel::Info, "info line");
        Action::Continue
    }
}

main! { set_root_context(|_| Box::new(Root { vm: String::new(), greeting: Rc::new(String::new()) })); }
