// SDK test plugin, configuration, properties and logging: the VM and plugin
// configuration (JSON reader), properties by path, log levels, a refused configuration.
import {
  Action, HttpContext, LogLevel, RootContext, jsonError, registerRootContext,
} from "@edge/proxy-wasm-sdk/assembly/index";
import * as hostcalls from "@edge/proxy-wasm-sdk/assembly/hostcalls";
export * from "@edge/proxy-wasm-sdk/assembly/exports";

const LEVELS = ["Trace", "Debug", "Info", "Warn", "Error", "Critical"];

class Root extends RootContext {
  vm: string = "";
  greeting: string = "";

  onVmStart(size: u32): bool {
    const v = this.getVmConfiguration();
    this.vm = v ? String.UTF8.decode(v) : "";
    this.log(LogLevel.Info, "vm started with '" + this.vm + "'");
    return true;
  }

  onConfigure(size: u32): bool {
    const conf = this.getPluginConfigurationJson();
    if (conf === null) {
      this.log(LogLevel.Error, jsonError());
      return false;
    }
    const fail = conf.get("fail");
    if (fail !== null && fail.isBool() && fail.bool) {
      this.log(LogLevel.Error, "refusing: fail is true");
      return false;
    }
    const g = conf.get("greeting");
    const n = conf.get("n");
    const items = conf.get("items");
    this.greeting = (g !== null && g.isString() ? g.text : "none") +
      " n=" + (n !== null ? n.asInt() : 0).toString() +
      " items=" + (items !== null && items.isArray() ? items.items.length : 0).toString() +
      " json=" + conf.toJson();
    this.log(LogLevel.Debug, "configured: " + this.greeting);
    return true;
  }

  createHttpContext(id: u32): HttpContext | null {
    return new Conf(id, this);
  }
}

class Conf extends HttpContext {
  constructor(id: u32, public root: Root) {
    super(id);
  }

  prop(header: string, path: string[]): void {
    const v = this.getPropertyString(path);
    this.setHttpRequestHeader(header, v !== null ? v : "-");
  }

  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    this.setHttpRequestHeader("x-greeting", this.root.greeting);
    this.setHttpRequestHeader("x-vm-config", this.root.vm);
    this.prop("x-plugin-name", ["plugin_name"]);
    this.prop("x-req-path", ["request", "path"]);
    this.prop("x-req-method", ["request", "method"]);
    this.prop("x-tenant", ["edge", "tenant"]);
    this.setHttpRequestHeader("x-missing-property", this.getProperty(["no", "such", "property"]) === null ? "none" : "some");
    this.setHttpRequestHeader("x-log-level", LEVELS[<i32>hostcalls.getLogLevel()]);
    this.log(LogLevel.Warn, "warn line");
    this.log(LogLevel.Info, "info line");
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
