// SDK test plugin, header maps: pseudo-headers, get/set/add/remove, whole-map access,
// rewriting :path and :status. Reports what it saw in x-* headers.
import { Action, HttpContext, RootContext, registerRootContext } from "@edge/proxy-wasm-sdk/assembly/index";
export * from "@edge/proxy-wasm-sdk/assembly/exports";

class Root extends RootContext {
  createHttpContext(id: u32): HttpContext | null {
    return new Headers(id);
  }
}

class Headers extends HttpContext {
  setStatus: string | null = null;

  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const scheme = this.getHttpRequestHeader(":scheme");
    const seen = this.method() + " " + this.path() + " " + this.authority() + " " + (scheme ? scheme : "");
    const all = this.getHttpRequestHeaders();
    this.setHttpRequestHeader("x-seen", seen);
    this.setHttpRequestHeader("x-count", all.length.toString() + "/" + numHeaders.toString());
    this.setHttpRequestHeader("x-eos", endOfStream ? "1" : "0");
    this.addHttpRequestHeader("x-added", "one");
    this.addHttpRequestHeader("x-added", "two");
    this.setHttpRequestHeader("x-remove-me", null);
    this.setHttpRequestHeader("x-missing-is-none", this.getHttpRequestHeader("x-not-there") === null ? "1" : "0");
    const p = this.getHttpRequestHeader("x-rewrite-path");
    if (p !== null) this.setHttpRequestHeader(":path", p);
    this.setStatus = this.getHttpRequestHeader("x-set-status");
    return Action.Continue;
  }

  onHttpResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    const status = this.getHttpResponseHeader(":status");
    this.setHttpResponseHeader("x-status-seen", status ? status : "");
    this.addHttpResponseHeader("x-resp", "1");
    this.setHttpResponseHeader("x-drop", null);
    const names = new Array<string>();
    const all = this.getHttpResponseHeaders();
    for (let i = 0; i < all.length; i++) names.push(all[i].key);
    this.setHttpResponseHeader("x-resp-names", names.join(","));
    const s = this.setStatus;
    if (s !== null) this.setHttpResponseHeader(":status", s);
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
