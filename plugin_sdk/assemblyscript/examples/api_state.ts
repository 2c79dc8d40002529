// SDK test plugin, state: metrics of every type, shared data with CAS, shared queues,
// ticks (each tick bumps a shared counter).
import { Action, HttpContext, MetricType, RootContext, Status, registerRootContext } from "@edge/proxy-wasm-sdk/assembly/index";
import * as hostcalls from "@edge/proxy-wasm-sdk/assembly/hostcalls";
export * from "@edge/proxy-wasm-sdk/assembly/exports";

let requests: u32 = 0;
let gauge: u32 = 0;
let sizes: u32 = 0;

function statusName(s: Status): string {
  return s == Status.Ok ? "Ok" : s == Status.CasMismatch ? "CasMismatch" : "Status" + (<i32>s).toString();
}

class Root extends RootContext {
  onConfigure(size: u32): bool {
    requests = hostcalls.defineMetric(MetricType.Counter, "requests");
    gauge = hostcalls.defineMetric(MetricType.Gauge, "last_size");
    sizes = hostcalls.defineMetric(MetricType.Histogram, "sizes");
    this.setTickPeriodMilliseconds(50);
    return true;
  }

  onTick(): void {
    const cur = hostcalls.getSharedData("ticks");
    const n = cur.value ? I32.parseInt(String.UTF8.decode(cur.value!)) : 0;
    hostcalls.setSharedData("ticks", String.UTF8.encode((n + 1).toString()), cur.cas);
  }

  createHttpContext(id: u32): HttpContext | null {
    return new State(id);
  }
}

class State extends HttpContext {
  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    hostcalls.incrementMetric(requests, 1);
    const size = <u64>this.path().length;
    hostcalls.recordMetric(gauge, size);
    hostcalls.recordMetric(sizes, size);
    this.setHttpRequestHeader("x-requests", hostcalls.getMetric(requests).toString());

    // a write with the token just read succeeds; a second one with the same (now
    // stale) token must fail with CasMismatch
    hostcalls.setSharedData("hits", String.UTF8.encode("0"));
    const cas = hostcalls.getSharedData("hits").cas;
    const first = hostcalls.setSharedData("hits", String.UTF8.encode("1"), cas);
    const stale = hostcalls.setSharedData("hits", String.UTF8.encode("2"), cas);
    this.setHttpRequestHeader("x-cas", statusName(first) + "/" + statusName(stale));

    const q = hostcalls.registerSharedQueue("jobs");
    hostcalls.enqueueSharedQueue(q, String.UTF8.encode("job-1"));
    const got = hostcalls.dequeueSharedQueue(q);
    const empty = hostcalls.dequeueSharedQueue(q) === null && hostcalls.lastStatus() == Status.Empty;
    const item = got !== null ? String.UTF8.decode(got) : "";
    this.setHttpRequestHeader("x-queue", item + "/" + (empty ? "true" : "false"));
    const ticks = hostcalls.getSharedData("ticks").value;
    this.setHttpRequestHeader("x-ticks", ticks ? String.UTF8.decode(ticks) : "");
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
