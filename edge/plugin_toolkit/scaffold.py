"""``edge plugin new``: a working plugin skeleton with a test, in Rust or AssemblyScript.

The skeleton adds a request header taken from its configuration
(``{"header": "x-hello", "value": "world"}``) and rejects a configuration without a
header name, so both the happy path and ``on_configure`` failing are shown.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from edge.plugin_toolkit import paths

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

RUST_CARGO = """\
[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib", "rlib"]
doctest = false

[dependencies]
edge-proxy-wasm = {{ path = "{sdk}" }}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
"""

RUST_LIB = """\
//! {name}: adds a request header from the plugin configuration.
use edge_proxy_wasm::*;
use std::rc::Rc;

struct Config {{
    header: String,
    value: String,
}}

struct Root {{
    config: Option<Rc<Config>>,
}}

impl Context for Root {{}}

impl RootContext for Root {{
    fn on_configure(&mut self, _size: usize) -> bool {{
        let json = match self.get_plugin_configuration_json() {{
            Ok(j) => j,
            Err(e) => {{
                self.log(LogLevel::Error, &format!("{name}: {{}}", e));
                return false;
            }}
        }};
        let header = json.get("header").and_then(|v| v.as_str()).unwrap_or("");
        if header.is_empty() {{
            self.log(LogLevel::Error, "{name}: config field 'header': expected a header name");
            return false;
        }}
        let value = json.get("value").and_then(|v| v.as_str()).unwrap_or("");
        let header = header.to_ascii_lowercase();
        self.config = Some(Rc::new(Config {{ header, value: value.to_string() }}));
        true
    }}

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {{
        let config = self.config.clone()?;
        Some(Box::new(Filter {{ config }}))
    }}
}}

struct Filter {{
    config: Rc<Config>,
}}

impl Context for Filter {{}}

impl HttpContext for Filter {{
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {{
        self.set_http_request_header(&self.config.header, Some(&self.config.value));
        log!(LogLevel::Info, "{name}: set {{}} on {{}}", self.config.header, self.path());
        Action::Continue
    }}
}}

main! {{
    set_root_context(|_| Box::new(Root {{ config: None }}));
}}
"""

AS_PACKAGE = {
    "version": "0.1.0",
    "private": True,
    "scripts": {"build": "asc assembly/index.ts --config asconfig.json --target release"},
}

AS_CONFIG = {
    "entries": ["assembly/index.ts"],
    "targets": {"release": {"outFile": "dist/{name}.wasm", "optimizeLevel": 3, "shrinkLevel": 1}},
    "options": {
        "exportStart": "_initialize",
        "runtime": "incremental",
        "use": ["abort=~lib/@edge/proxy-wasm-sdk/assembly/runtime/abortWithLog"],
    },
}

AS_INDEX = """\
// {name}: adds a request header from the plugin configuration.
import {{
  Action, HttpContext, LogLevel, RootContext, jsonError, registerRootContext,
}} from "@edge/proxy-wasm-sdk/assembly/index";
export * from "@edge/proxy-wasm-sdk/assembly/exports";

class Root extends RootContext {{
  header: string = "";
  value: string = "";

  onConfigure(size: u32): bool {{
    const json = this.getPluginConfigurationJson();
    if (json === null) {{
      this.log(LogLevel.Error, "{name}: " + jsonError());
      return false;
    }}
    const header = json.get("header");
    if (header === null || !header.isString() || header.text.length == 0) {{
      this.log(LogLevel.Error, "{name}: config field 'header': expected a header name");
      return false;
    }}
    this.header = header.text.toLowerCase();
    const value = json.get("value");
    this.value = value !== null && value.isString() ? value.text : "";
    return true;
  }}

  createHttpContext(contextId: u32): HttpContext | null {{
    return new Filter(contextId, this);
  }}
}}

class Filter extends HttpContext {{
  constructor(contextId: u32, public root: Root) {{
    super(contextId);
  }}

  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {{
    this.setHttpRequestHeader(this.root.header, this.root.value);
    this.log(LogLevel.Info, "{name}: set " + this.root.header + " on " + this.path());
    return Action.Continue;
  }}
}}

registerRootContext((id: u32): RootContext => new Root(id), "{name}");
"""

TEST = '''\
"""Builds the plugin and runs one request through it with `edge plugin test`.

Run: python -m pytest tests -q
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def edge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge", "plugin", *args], capture_output=True, text=True
    )


def build() -> str:
    proc = edge("build", str(HERE))
    assert proc.returncode == 0, proc.stderr
    return next(line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
                if line.startswith("module:"))


def test_sets_the_configured_header() -> None:
    wasm = build()
    conf = json.dumps({{"header": "x-hello", "value": "world"}})
    proc = edge("test", wasm, "--config", conf, "--path", "/hi", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert ["x-hello", "world"] in result["upstream"]["headers"]
    assert any("{name}: set x-hello on /hi" in line for _level, line in result["logs"])


def test_rejects_a_config_without_header() -> None:
    wasm = build()
    proc = edge("test", wasm, "--config", "{{}}", "--json")
    assert proc.returncode == 2
    assert "config field 'header'" in proc.stdout
'''

README = """\
# {name}

A proxy-wasm plugin for the edge gateway ({lang}), made by `edge plugin new`.

    edge plugin build .
    edge plugin test dist/{name}.wasm --path /hi \\
        --config '{{"header": "x-hello", "value": "world"}}'
    python -m pytest tests -q

See plugin_sdk/README.md in the edge repository for the SDK guide and bundle configuration.
"""


class ScaffoldError(Exception):
    pass


def new(name: str, lang: str, parent: Path) -> Path:
    if not NAME_RE.match(name):
        raise ScaffoldError(
            f"plugin name {name!r}: use lower-case letters, digits and '-', starting with a letter"
        )
    if lang not in ("rust", "assemblyscript"):
        raise ScaffoldError(f"--lang {lang!r}: expected rust or assemblyscript")
    project = (parent / name).resolve()
    if project.exists() and any(project.iterdir()):
        raise ScaffoldError(f"{project} already exists and is not empty")
    (project / "tests").mkdir(parents=True, exist_ok=True)
    fmt = {"name": name}
    if lang == "rust":
        (project / "src").mkdir(exist_ok=True)
        (project / "Cargo.toml").write_text(RUST_CARGO.format(name=name, sdk=paths.RUST_SDK))
        (project / "src" / "lib.rs").write_text(RUST_LIB.format(**fmt))
        (project / ".gitignore").write_text("target/\ndist/\nCargo.lock\n")
    elif lang == "assemblyscript":
        (project / "assembly").mkdir(exist_ok=True)
        package = {
            "name": name,
            **AS_PACKAGE,
            "dependencies": {paths.AS_SDK_PACKAGE: f"file:{paths.AS_SDK}"},
            "devDependencies": {"assemblyscript": paths.ASSEMBLYSCRIPT_VERSION},
        }
        (project / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        conf = json.loads(json.dumps(AS_CONFIG).replace("{name}", name))
        (project / "asconfig.json").write_text(json.dumps(conf, indent=2) + "\n")
        (project / "assembly" / "index.ts").write_text(AS_INDEX.format(**fmt))
        (project / ".gitignore").write_text("node_modules/\ndist/\n")
    else:
        raise ScaffoldError(f"--lang {lang!r}: expected rust or assemblyscript")
    (project / "tests" / f"test_{name.replace('-', '_')}.py").write_text(TEST.format(**fmt))
    (project / "README.md").write_text(README.format(name=name, lang=lang))
    return project
