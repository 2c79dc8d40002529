// The proxy_on_* exports. A plugin re-exports them from its entry file:
//   export * from "@edge/proxy-wasm-sdk/assembly/exports";

import { callouts, findRootFactory, HttpContext, https, RootContext, roots } from "./context";
import * as host from "./hostcalls";
import { Action, LogLevel } from "./types";

export function proxy_abi_version_0_2_1(): void {}

/** The allocator the host fills return values through; freed by hostcalls.takeReturned. */
export function malloc(size: usize): usize {
  return heap.alloc(size);
}

export function proxy_on_context_create(contextId: u32, rootContextId: u32): void {
  if (rootContextId == 0) {
    const factory = findRootFactory();
    if (factory) roots.set(contextId, factory(contextId));
    return;
  }
  if (!roots.has(rootContextId)) return;
  const http = roots.get(rootContextId).createHttpContext(contextId);
  if (http) https.set(contextId, http);
}

function root(id: u32): RootContext | null {
  return roots.has(id) ? roots.get(id) : null;
}

function stream(id: u32): HttpContext | null {
  return https.has(id) ? https.get(id) : null;
}

export function proxy_on_vm_start(contextId: u32, size: u32): u32 {
  const r = root(contextId);
  return r ? <u32>r.onVmStart(size) : 0;
}

export function proxy_on_configure(contextId: u32, size: u32): u32 {
  const r = root(contextId);
  return r ? <u32>r.onConfigure(size) : 0;
}

export function proxy_on_tick(contextId: u32): void {
  const r = root(contextId);
  if (r) r.onTick();
}

export function proxy_on_queue_ready(contextId: u32, queueId: u32): void {
  const r = root(contextId);
  if (r) r.onQueueReady(queueId);
}

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 {
  const h = stream(contextId);
  return h ? h.onHttpRequestHeaders(numHeaders, endOfStream != 0) : Action.Continue;
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: u32): u32 {
  const h = stream(contextId);
  return h ? h.onHttpRequestBody(bodySize, endOfStream != 0) : Action.Continue;
}

export function proxy_on_request_trailers(contextId: u32, numTrailers: u32): u32 {
  const h = stream(contextId);
  return h ? h.onHttpRequestTrailers(numTrailers) : Action.Continue;
}

export function proxy_on_response_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 {
  const h = stream(contextId);
  return h ? h.onHttpResponseHeaders(numHeaders, endOfStream != 0) : Action.Continue;
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: u32): u32 {
  const h = stream(contextId);
  return h ? h.onHttpResponseBody(bodySize, endOfStream != 0) : Action.Continue;
}

export function proxy_on_response_trailers(contextId: u32, numTrailers: u32): u32 {
  const h = stream(contextId);
  return h ? h.onHttpResponseTrailers(numTrailers) : Action.Continue;
}

export function proxy_on_http_call_response(contextId: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
  if (!callouts.has(token)) return;
  const owner = callouts.get(token);
  callouts.delete(token);
  // later hostcalls (resume, local response) must act on the caller's stream
  host.setEffectiveContext(owner);
  const h = stream(owner);
  if (h) {
    h.onHttpCallResponse(token, numHeaders, bodySize, numTrailers);
    return;
  }
  const r = root(owner);
  if (r) r.onHttpCallResponse(token, numHeaders, bodySize, numTrailers);
}

export function proxy_on_done(contextId: u32): u32 {
  const h = stream(contextId);
  if (h) return <u32>h.onDone();
  const r = root(contextId);
  return r ? <u32>r.onDone() : 1;
}

export function proxy_on_log(contextId: u32): void {
  const h = stream(contextId);
  if (h) h.onLog();
}

export function proxy_on_delete(contextId: u32): void {
  https.delete(contextId);
  roots.delete(contextId);
}

/** `--use abort=...` target: AssemblyScript's assertion/bounds failures become a
 *  critical log line and a trap, with no env.abort import. */
export function abortWithLog(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const m = message ? message : "abort";
  const f = fileName ? fileName : "?";
  host.log(LogLevel.Critical, m + " at " + f + ":" + line.toString() + ":" + column.toString());
  unreachable();
}
