// SDK test plugin, bodies: buffer the request body to its end, prepend/append to it;
// upper-case the response body and drop its Content-Length.
import { Action, HttpContext, RootContext, registerRootContext } from "@edge/proxy-wasm-sdk/assembly/index";
export * from "@edge/proxy-wasm-sdk/assembly/exports";

class Root extends RootContext {
  createHttpContext(id: u32): HttpContext | null {
    return new Body(id);
  }
}

class Body extends HttpContext {
  onHttpRequestBody(bodySize: u32, endOfStream: bool): Action {
    if (!endOfStream) return Action.Pause;
    const first = this.getHttpRequestBody(0, 1);
    this.setHttpRequestBody(0, 0, String.UTF8.encode("["));
    this.setHttpRequestBody(bodySize + 1, 0, String.UTF8.encode("]"));
    this.setHttpRequestHeader("x-first-byte", first ? String.UTF8.decode(first) : "");
    return Action.Continue;
  }

  onHttpResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    this.setHttpResponseHeader("content-length", null);
    return Action.Continue;
  }

  onHttpResponseBody(bodySize: u32, endOfStream: bool): Action {
    if (!endOfStream) return Action.Pause;
    const body = this.getHttpResponseBody(0, bodySize);
    const text = body ? String.UTF8.decode(body) : "";
    this.setHttpResponseBody(0, bodySize, String.UTF8.encode(text.toUpperCase()));
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
