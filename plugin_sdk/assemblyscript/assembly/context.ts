// The classes a plugin extends. Callbacks have defaults, so a plugin overrides only what
// it needs; helpers mirror the Rust SDK's trait methods in camelCase.

import * as host from "./hostcalls";
import { JsonValue, parseJson } from "./json";
import { Action, BufferType, Header, LogLevel, MapType, Status, StreamType } from "./types";

const MAX: u32 = 0xffffffff;

/** What root and HTTP contexts share: http_call responses, properties, shared data. */
export class Context {
  constructor(public readonly contextId: u32) {}

  /** The answer to dispatchHttpCall(token); numHeaders == 0 means the call failed. */
  onHttpCallResponse(tokenId: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {}

  /** The context is ending; return false to finish later with done(). */
  onDone(): bool {
    return true;
  }

  log(level: LogLevel, message: string): void {
    host.log(level, message);
  }

  getCurrentTimeNanoseconds(): u64 {
    return host.getCurrentTimeNanoseconds();
  }

  getProperty(path: string[]): ArrayBuffer | null {
    return host.getProperty(path);
  }

  getPropertyString(path: string[]): string | null {
    const v = host.getProperty(path);
    return v ? String.UTF8.decode(v) : null;
  }

  dispatchHttpCall(upstream: string, headers: Header[], body: ArrayBuffer | null, timeoutMs: u32): u32 {
    const token = host.dispatchHttpCall(upstream, headers, body, [], timeoutMs);
    if (token != 0 || host.lastStatus() == Status.Ok) registerCallout(token, this.contextId);
    return token;
  }

  getHttpCallResponseHeaders(): Header[] {
    return host.getHeaderMapPairs(MapType.HttpCallResponseHeaders);
  }

  getHttpCallResponseHeader(name: string): string | null {
    return host.getHeaderMapValue(MapType.HttpCallResponseHeaders, name);
  }

  getHttpCallResponseBody(start: u32, maxSize: u32): ArrayBuffer | null {
    return host.getBufferBytes(BufferType.HttpCallResponseBody, start, maxSize);
  }

  done(): void {
    host.done();
  }
}

/** One per plugin configuration: reads it, creates an HttpContext per request. */
export class RootContext extends Context {
  onVmStart(vmConfigurationSize: u32): bool {
    return true;
  }

  /** Return false to reject the configuration (the host refuses the whole config). */
  onConfigure(pluginConfigurationSize: u32): bool {
    return true;
  }

  onTick(): void {}

  onQueueReady(queueId: u32): void {}

  /** The per-request filter, or null for a root-only plugin. */
  createHttpContext(contextId: u32): HttpContext | null {
    return null;
  }

  getVmConfiguration(): ArrayBuffer | null {
    return host.getBufferBytes(BufferType.VmConfiguration, 0, MAX);
  }

  getPluginConfiguration(): ArrayBuffer | null {
    return host.getBufferBytes(BufferType.PluginConfiguration, 0, MAX);
  }

  getPluginConfigurationString(): string {
    const b = this.getPluginConfiguration();
    return b ? String.UTF8.decode(b) : "";
  }

  /** The configuration as JSON; null with jsonError() set when it is not valid JSON.
   *  An empty configuration reads as an empty object. */
  getPluginConfigurationJson(): JsonValue | null {
    const text = this.getPluginConfigurationString();
    if (text.trim().length == 0) return JsonValue.object();
    return parseJson(text);
  }

  setTickPeriodMilliseconds(ms: u32): void {
    host.setTickPeriodMilliseconds(ms);
  }
}

/** One per request. */
export class HttpContext extends Context {
  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    return Action.Continue;
  }

  onHttpRequestBody(bodySize: u32, endOfStream: bool): Action {
    return Action.Continue;
  }

  onHttpRequestTrailers(numTrailers: u32): Action {
    return Action.Continue;
  }

  onHttpResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    return Action.Continue;
  }

  onHttpResponseBody(bodySize: u32, endOfStream: bool): Action {
    return Action.Continue;
  }

  onHttpResponseTrailers(numTrailers: u32): Action {
    return Action.Continue;
  }

  /** The last callback of a request, also after a local response. */
  onLog(): void {}

  /** Every request header incl. :method, :path (with query), :authority, :scheme. */
  getHttpRequestHeaders(): Header[] {
    return host.getHeaderMapPairs(MapType.HttpRequestHeaders);
  }

  getHttpRequestHeader(name: string): string | null {
    return host.getHeaderMapValue(MapType.HttpRequestHeaders, name);
  }

  /** Replaces a request header; null removes it. :path/:method/:authority rewrite the request. */
  setHttpRequestHeader(name: string, value: string | null): void {
    if (value === null) host.removeHeaderMapValue(MapType.HttpRequestHeaders, name);
    else host.replaceHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }

  addHttpRequestHeader(name: string, value: string): void {
    host.addHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }

  setHttpRequestHeaders(headers: Header[]): void {
    host.setHeaderMapPairs(MapType.HttpRequestHeaders, headers);
  }

  getHttpRequestBody(start: u32, maxSize: u32): ArrayBuffer | null {
    return host.getBufferBytes(BufferType.HttpRequestBody, start, maxSize);
  }

  setHttpRequestBody(start: u32, size: u32, value: ArrayBuffer): void {
    host.setBufferBytes(BufferType.HttpRequestBody, start, size, value);
  }

  method(): string {
    const v = this.getHttpRequestHeader(":method");
    return v ? v : "";
  }

  /** The request path with its query string. */
  path(): string {
    const v = this.getHttpRequestHeader(":path");
    return v ? v : "";
  }

  authority(): string {
    const v = this.getHttpRequestHeader(":authority");
    return v ? v : "";
  }

  resumeHttpRequest(): void {
    host.continueStream(StreamType.HttpRequest);
  }

  getHttpResponseHeaders(): Header[] {
    return host.getHeaderMapPairs(MapType.HttpResponseHeaders);
  }

  getHttpResponseHeader(name: string): string | null {
    return host.getHeaderMapValue(MapType.HttpResponseHeaders, name);
  }

  setHttpResponseHeader(name: string, value: string | null): void {
    if (value === null) host.removeHeaderMapValue(MapType.HttpResponseHeaders, name);
    else host.replaceHeaderMapValue(MapType.HttpResponseHeaders, name, value);
  }

  addHttpResponseHeader(name: string, value: string): void {
    host.addHeaderMapValue(MapType.HttpResponseHeaders, name, value);
  }

  getHttpResponseBody(start: u32, maxSize: u32): ArrayBuffer | null {
    return host.getBufferBytes(BufferType.HttpResponseBody, start, maxSize);
  }

  setHttpResponseBody(start: u32, size: u32, value: ArrayBuffer): void {
    host.setBufferBytes(BufferType.HttpResponseBody, start, size, value);
  }

  resumeHttpResponse(): void {
    host.continueStream(StreamType.HttpResponse);
  }

  /** Answers the client directly; the request ends here. */
  sendHttpResponse(status: u32, headers: Header[], body: ArrayBuffer | null): void {
    host.sendHttpResponse(status, headers, body);
  }
}

// ----- the tables the exports dispatch through -----

export type RootFactory = (contextId: u32) => RootContext;

const factoryIds = new Array<string>();
const factories = new Array<RootFactory>();
export const roots = new Map<u32, RootContext>();
export const https = new Map<u32, HttpContext>();
export const callouts = new Map<u32, u32>();

function registerCallout(token: u32, contextId: u32): void {
  callouts.set(token, contextId);
}

/** Registers a root context under `rootId` (the bundle's root_id / "plugin_root_id").
 *  With a single registration, that factory serves every root id. */
export function registerRootContext(factory: RootFactory, rootId: string = ""): void {
  factoryIds.push(rootId);
  factories.push(factory);
}

/** The factory for the host's plugin_root_id (or the only one registered). */
export function findRootFactory(): RootFactory | null {
  if (factories.length == 0) return null;
  const v = host.getProperty(["plugin_root_id"]);
  const id = v ? String.UTF8.decode(v) : "";
  for (let i = 0; i < factoryIds.length; i++) {
    if (factoryIds[i] == id) return factories[i];
  }
  if (factories.length == 1) return factories[0];
  host.log(LogLevel.Critical, "no root context registered for plugin_root_id '" + id + "'");
  return null;
}
