// Safe wrappers over the host functions. Raw pointers stay in this file and in
// runtime.ts; plugins call these or the Context helpers built on them.
//
// AssemblyScript has no exceptions, so a call that can fail returns null (or 0) and
// leaves the host's status in lastStatus().

import * as abi from "./imports";
import { BufferType, Header, LogLevel, MapType, MetricType, Status, StreamType } from "./types";

// out-parameters of host calls: two u32 slots and a u64
const RET_PTR: usize = memory.data(8);
const RET_LEN: usize = RET_PTR + 4;
const RET_U64: usize = memory.data(8);
const RET_CAS: usize = memory.data(4);

let LAST: Status = Status.Ok;

/** The status of the last hostcall that returned null/0. */
export function lastStatus(): Status {
  return LAST;
}

function ok(code: u32): bool {
  LAST = <Status>code;
  return code == 0;
}

/** Takes the host-allocated block named by RET_PTR/RET_LEN into an ArrayBuffer. */
function takeReturned(): ArrayBuffer {
  const ptr = load<u32>(RET_PTR);
  const len = load<u32>(RET_LEN);
  const out = new ArrayBuffer(<i32>len);
  if (len > 0 && ptr != 0) {
    memory.copy(changetype<usize>(out), ptr, len);
    heap.free(ptr);
  }
  return out;
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

export function log(level: LogLevel, message: string): void {
  const b = utf8(message);
  abi.proxy_log(level, changetype<usize>(b), b.byteLength);
}

export function getLogLevel(): LogLevel {
  store<u32>(RET_PTR, 0);
  if (!ok(abi.proxy_get_log_level(RET_PTR))) return LogLevel.Trace;
  return <LogLevel>load<u32>(RET_PTR);
}

export function getCurrentTimeNanoseconds(): u64 {
  store<u64>(RET_U64, 0);
  abi.proxy_get_current_time_nanoseconds(RET_U64);
  return load<u64>(RET_U64);
}

export function setTickPeriodMilliseconds(ms: u32): Status {
  return <Status>abi.proxy_set_tick_period_milliseconds(ms);
}

export function getBufferBytes(buffer: BufferType, start: u32, maxSize: u32): ArrayBuffer | null {
  store<u64>(RET_PTR, 0);
  if (!ok(abi.proxy_get_buffer_bytes(buffer, start, maxSize, RET_PTR, RET_LEN))) return null;
  return takeReturned();
}

/** Replaces `size` bytes at `start` (0, 0 prepends; start past the end appends). */
export function setBufferBytes(buffer: BufferType, start: u32, size: u32, data: ArrayBuffer): Status {
  return <Status>abi.proxy_set_buffer_bytes(buffer, start, size, changetype<usize>(data), data.byteLength);
}

/** The header-map wire format: u32 count, (key_len, value_len) per pair, then NUL-ended bytes. */
export function serializeHeaders(headers: Header[]): ArrayBuffer {
  const keys = new Array<ArrayBuffer>(headers.length);
  const values = new Array<ArrayBuffer>(headers.length);
  let size = 4;
  for (let i = 0; i < headers.length; i++) {
    keys[i] = utf8(headers[i].key);
    values[i] = utf8(headers[i].value);
    size += 8 + keys[i].byteLength + values[i].byteLength + 2;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, headers.length);
  let data = base + 4 + 8 * headers.length;
  for (let i = 0; i < headers.length; i++) {
    const kl = keys[i].byteLength;
    const vl = values[i].byteLength;
    store<u32>(base + 4 + 8 * i, kl);
    store<u32>(base + 8 + 8 * i, vl);
    memory.copy(data, changetype<usize>(keys[i]), kl);
    data += kl + 1;
    memory.copy(data, changetype<usize>(values[i]), vl);
    data += vl + 1;
  }
  return out;
}

/** Decodes the wire format; an empty list for truncated or inconsistent input. */
export function deserializeHeaders(buf: ArrayBuffer): Header[] {
  const out = new Array<Header>();
  const n = buf.byteLength;
  if (n <= 4) return out;
  const base = changetype<usize>(buf);
  const count = load<u32>(base);
  if (<u64>count * 10 > <u64>n) return out;
  let data = 4 + 8 * count;
  for (let i: u32 = 0; i < count; i++) {
    const kl = load<u32>(base + 4 + 8 * i);
    const vl = load<u32>(base + 8 + 8 * i);
    if (<u64>data + kl + vl + 2 > <u64>n) return new Array<Header>();
    const key = String.UTF8.decodeUnsafe(base + data, kl);
    data += kl + 1;
    const value = String.UTF8.decodeUnsafe(base + data, vl);
    data += vl + 1;
    out.push(new Header(key, value));
  }
  return out;
}

export function getHeaderMapPairs(map: MapType): Header[] {
  store<u64>(RET_PTR, 0);
  if (!ok(abi.proxy_get_header_map_pairs(map, RET_PTR, RET_LEN))) return new Array<Header>();
  return deserializeHeaders(takeReturned());
}

export function setHeaderMapPairs(map: MapType, headers: Header[]): Status {
  const b = serializeHeaders(headers);
  return <Status>abi.proxy_set_header_map_pairs(map, changetype<usize>(b), b.byteLength);
}

/** A header's value, or null when absent. */
export function getHeaderMapValue(map: MapType, key: string): string | null {
  const k = utf8(key);
  store<u64>(RET_PTR, 0);
  if (!ok(abi.proxy_get_header_map_value(map, changetype<usize>(k), k.byteLength, RET_PTR, RET_LEN))) {
    return null;
  }
  return String.UTF8.decode(takeReturned());
}

export function addHeaderMapValue(map: MapType, key: string, value: string): Status {
  const k = utf8(key);
  const v = utf8(value);
  return <Status>abi.proxy_add_header_map_value(map, changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

/** Sets a header, replacing every existing value. */
export function replaceHeaderMapValue(map: MapType, key: string, value: string): Status {
  const k = utf8(key);
  const v = utf8(value);
  return <Status>abi.proxy_replace_header_map_value(map, changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
}

export function removeHeaderMapValue(map: MapType, key: string): Status {
  const k = utf8(key);
  return <Status>abi.proxy_remove_header_map_value(map, changetype<usize>(k), k.byteLength);
}

/** Property path segments joined by NUL, no trailing NUL (what Envoy expects). */
function propertyPath(path: string[]): ArrayBuffer {
  return utf8(path.join("\0"));
}

/** A property, e.g. ["request", "path"] or ["plugin_root_id"]; null when absent. */
export function getProperty(path: string[]): ArrayBuffer | null {
  const p = propertyPath(path);
  store<u64>(RET_PTR, 0);
  if (!ok(abi.proxy_get_property(changetype<usize>(p), p.byteLength, RET_PTR, RET_LEN))) return null;
  return takeReturned();
}

export function setProperty(path: string[], value: ArrayBuffer): Status {
  const p = propertyPath(path);
  return <Status>abi.proxy_set_property(changetype<usize>(p), p.byteLength, changetype<usize>(value), value.byteLength);
}

export class SharedData {
  constructor(public value: ArrayBuffer | null, public cas: u32) {}
}

/** The value and its CAS token; value null when the key is absent. */
export function getSharedData(key: string): SharedData {
  const k = utf8(key);
  store<u64>(RET_PTR, 0);
  store<u32>(RET_CAS, 0);
  if (!ok(abi.proxy_get_shared_data(changetype<usize>(k), k.byteLength, RET_PTR, RET_LEN, RET_CAS))) {
    return new SharedData(null, 0);
  }
  const cas = load<u32>(RET_CAS);
  return new SharedData(takeReturned(), cas);
}

/** Stores `value`; with a non-zero `cas`, fails with Status.CasMismatch after a concurrent write. */
export function setSharedData(key: string, value: ArrayBuffer, cas: u32 = 0): Status {
  const k = utf8(key);
  return <Status>abi.proxy_set_shared_data(changetype<usize>(k), k.byteLength, changetype<usize>(value), value.byteLength, cas);
}

export function registerSharedQueue(name: string): u32 {
  const n = utf8(name);
  store<u32>(RET_PTR, 0);
  if (!ok(abi.proxy_register_shared_queue(changetype<usize>(n), n.byteLength, RET_PTR))) return 0;
  return load<u32>(RET_PTR);
}

export function resolveSharedQueue(vmId: string, name: string): u32 {
  const v = utf8(vmId);
  const n = utf8(name);
  store<u32>(RET_PTR, 0);
  if (!ok(abi.proxy_resolve_shared_queue(changetype<usize>(v), v.byteLength, changetype<usize>(n), n.byteLength, RET_PTR))) return 0;
  return load<u32>(RET_PTR);
}

export function enqueueSharedQueue(id: u32, value: ArrayBuffer): Status {
  return <Status>abi.proxy_enqueue_shared_queue(id, changetype<usize>(value), value.byteLength);
}

/** The next item, or null (lastStatus() is Status.Empty when the queue is empty). */
export function dequeueSharedQueue(id: u32): ArrayBuffer | null {
  store<u64>(RET_PTR, 0);
  if (!ok(abi.proxy_dequeue_shared_queue(id, RET_PTR, RET_LEN))) return null;
  return takeReturned();
}

export function continueStream(stream: StreamType): Status {
  return <Status>abi.proxy_continue_stream(stream);
}

/** Answers the client from the plugin; the request ends here. */
export function sendHttpResponse(status: u32, headers: Header[], body: ArrayBuffer | null): Status {
  const h = serializeHeaders(headers);
  const b = body ? body : new ArrayBuffer(0);
  return <Status>abi.proxy_send_local_response(status, 0, 0, changetype<usize>(b), b.byteLength, changetype<usize>(h), h.byteLength, -1);
}

/** Calls an upstream of the bundle by id; headers need :method, :path, :authority.
 *  Returns the token (0 on failure, see lastStatus()). */
export function dispatchHttpCall(upstream: string, headers: Header[], body: ArrayBuffer | null, trailers: Header[], timeoutMs: u32): u32 {
  const u = utf8(upstream);
  const h = serializeHeaders(headers);
  const t = serializeHeaders(trailers);
  const b = body ? body : new ArrayBuffer(0);
  store<u32>(RET_PTR, 0);
  if (!ok(abi.proxy_http_call(changetype<usize>(u), u.byteLength, changetype<usize>(h), h.byteLength, changetype<usize>(b), b.byteLength, changetype<usize>(t), t.byteLength, timeoutMs, RET_PTR))) {
    return 0;
  }
  return load<u32>(RET_PTR);
}

export function setEffectiveContext(contextId: u32): Status {
  return <Status>abi.proxy_set_effective_context(contextId);
}

export function done(): Status {
  return <Status>abi.proxy_done();
}

export function defineMetric(kind: MetricType, name: string): u32 {
  const n = utf8(name);
  store<u32>(RET_PTR, 0);
  if (!ok(abi.proxy_define_metric(kind, changetype<usize>(n), n.byteLength, RET_PTR))) return 0;
  return load<u32>(RET_PTR);
}

export function incrementMetric(id: u32, offset: i64): Status {
  return <Status>abi.proxy_increment_metric(id, offset);
}

export function recordMetric(id: u32, value: u64): Status {
  return <Status>abi.proxy_record_metric(id, value);
}

export function getMetric(id: u32): u64 {
  store<u64>(RET_U64, 0);
  if (!ok(abi.proxy_get_metric(id, RET_U64))) return 0;
  return load<u64>(RET_U64);
}
