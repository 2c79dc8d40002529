// SDK test plugin, local responses: from the request phase (with headers and body) and
// from the response phase; and a crash (/crash), to see how a trap is reported.
import { Action, Header, HttpContext, RootContext, registerRootContext } from "@edge/proxy-wasm-sdk/assembly/index";
export * from "@edge/proxy-wasm-sdk/assembly/exports";

class Root extends RootContext {
  createHttpContext(id: u32): HttpContext | null {
    return new Local(id);
  }
}

class Local extends HttpContext {
  late: bool = false;

  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const path = this.path();
    if (path.startsWith("/deny")) {
      this.sendHttpResponse(418, [new Header("x-why", "teapot"), new Header("content-type", "text/plain")],
        String.UTF8.encode("short and stout"));
      return Action.Pause;
    }
    if (path.startsWith("/crash")) {
      // an out-of-range index aborts; the SDK's abortWithLog logs it before the trap
      const items = new Array<i32>(0);
      return items[path.length] > 0 ? Action.Pause : Action.Continue;
    }
    this.late = path.startsWith("/late");
    return Action.Continue;
  }

  onHttpResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    if (this.late) {
      this.sendHttpResponse(503, [new Header("x-late", "1")], String.UTF8.encode("replaced"));
      return Action.Pause;
    }
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
