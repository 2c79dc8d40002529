// SDK test plugin, http_call with a callback: the request waits for a call to the
// upstream named in the configuration, then carries its status and body upstream.
import { Action, Header, HttpContext, RootContext, registerRootContext } from "@edge/proxy-wasm-sdk/assembly/index";
import * as hostcalls from "@edge/proxy-wasm-sdk/assembly/hostcalls";
export * from "@edge/proxy-wasm-sdk/assembly/exports";

class Root extends RootContext {
  upstream: string = "";

  onConfigure(size: u32): bool {
    this.upstream = this.getPluginConfigurationString();
    return true;
  }

  createHttpContext(id: u32): HttpContext | null {
    return new Call(id, this.upstream);
  }
}

class Call extends HttpContext {
  token: u32 = 0;

  constructor(id: u32, public upstream: string) {
    super(id);
  }

  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const headers = [
      new Header(":method", "GET"), new Header(":path", "/check"),
      new Header(":authority", "auth"), new Header("x-from", "sdk"),
    ];
    const token = this.dispatchHttpCall(this.upstream, headers, null, 5000);
    if (hostcalls.lastStatus() != 0) {
      this.setHttpRequestHeader("x-call-error", "status " + (<i32>hostcalls.lastStatus()).toString());
      return Action.Continue;
    }
    this.token = token;
    return Action.Pause;
  }

  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
    if (token != this.token || numHeaders == 0) {
      this.sendHttpResponse(503, [], String.UTF8.encode("call failed"));
      return;
    }
    const status = this.getHttpCallResponseHeader(":status");
    const body = this.getHttpCallResponseBody(0, bodySize);
    this.setHttpRequestHeader("x-call-status", status ? status : "");
    this.setHttpRequestHeader("x-call-body-len", (body ? body.byteLength : 0).toString());
    this.resumeHttpRequest();
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
