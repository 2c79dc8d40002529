// The smallest useful filter in AssemblyScript: adds a response header.
import { Action, Context, HttpContext, RootContext, registerRootContext } from "@edge/proxy-wasm-sdk/assembly/index";
// only the callback it implements: requests and response bodies never enter the VM
export * from "@edge/proxy-wasm-sdk/assembly/exports_base";
export { proxy_on_response_headers } from "@edge/proxy-wasm-sdk/assembly/exports";

class Root extends RootContext {
  createHttpContext(contextId: u32): HttpContext | null {
    return new Filter(contextId);
  }
}

class Filter extends HttpContext {
  onHttpResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    this.setHttpResponseHeader("x-edge-filter", "assemblyscript");
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id), "");
