// form-to-json: transcodes application/x-www-form-urlencoded request bodies to JSON for
// the upstream (see README.md). Other requests pass untouched.

import {
  Action, Header, HttpContext, JsonValue, LogLevel, MetricType, RootContext,
  bytesOf, jsonError, registerRootContext,
} from "@edge/proxy-wasm-sdk/assembly/index";
import * as hostcalls from "@edge/proxy-wasm-sdk/assembly/hostcalls";
// request phases only: responses never enter the VM and keep their upstream framing
export * from "@edge/proxy-wasm-sdk/assembly/exports_base";
export { proxy_on_request_headers, proxy_on_request_body } from "@edge/proxy-wasm-sdk/assembly/exports";

enum Repeated {
  Array,
  First,
  Last,
}

class Config {
  maxBodyBytes: u32 = 1048576;
  contentType: string = "application/json";
  repeated: Repeated = Repeated.Array;
}

let CONFIG_ERROR = "";
let convertedMetric: u32 = 0;
let rejectedMetric: u32 = 0;

function bad(field: string, message: string): Config | null {
  CONFIG_ERROR = "config field '" + field + "': " + message;
  return null;
}

function parseConfig(conf: JsonValue): Config | null {
  if (!conf.isObject()) return bad("(root)", "expected a JSON object");
  const c = new Config();
  for (let i = 0; i < conf.keys.length; i++) {
    const k = conf.keys[i];
    const v = conf.items[i];
    if (k == "max_body_bytes") {
      const n = v.asInt();
      if (n < 1 || n > 67108864) return bad(k, "expected an integer from 1 to 67108864");
      c.maxBodyBytes = <u32>n;
    } else if (k == "content_type") {
      if (!v.isString() || v.text.length == 0) return bad(k, "expected a media type");
      c.contentType = v.text;
    } else if (k == "repeated_keys") {
      if (v.isString() && v.text == "array") c.repeated = Repeated.Array;
      else if (v.isString() && v.text == "first") c.repeated = Repeated.First;
      else if (v.isString() && v.text == "last") c.repeated = Repeated.Last;
      else return bad(k, "expected \"array\", \"first\" or \"last\"");
    } else {
      return bad(k, "unknown field");
    }
  }
  return c;
}

function hexval(c: u8): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** True when `b` is well-formed UTF-8 (no overlongs, no surrogates). */
function validUtf8(b: Uint8Array): bool {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n = 0;
    let min: u32 = 0;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      min = 0x10000;
    } else return false;
    if (i + n >= b.length) return false;
    let cp: u32 = (<u32>c) & (<u32>0x3f >> <u32>n);
    for (let j = 1; j <= n; j++) {
      const d = b[i + j];
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

let DECODE_ERROR = "";

/** Percent-decodes `b[from, to)` (`+` is a space) into a new array; null with
 *  DECODE_ERROR set for a bad escape or bytes that are not UTF-8 once decoded. */
function decodeComponent(b: Uint8Array, from: i32, to: i32): Uint8Array | null {
  const out = new Uint8Array(to - from);
  const src = b.dataStart;
  const dst = out.dataStart;
  let n = 0;
  let i = from;
  // from <= i < to <= b.length and n <= i - from: raw loads and stores stay in range
  while (i < to) {
    const c = load<u8>(src + i);
    if (c == 37) {
      if (i + 2 >= to) {
        DECODE_ERROR = "truncated percent escape at byte " + i.toString();
        return null;
      }
      const h = hexval(load<u8>(src + i + 1));
      const l = hexval(load<u8>(src + i + 2));
      if (h < 0 || l < 0) {
        DECODE_ERROR = "bad percent escape at byte " + i.toString();
        return null;
      }
      store<u8>(dst + n++, <u8>((h << 4) | l));
      i += 3;
    } else {
      store<u8>(dst + n++, c == 43 ? 32 : c);
      i++;
    }
  }
  const view = out.subarray(0, n);
  if (!validUtf8(view)) {
    DECODE_ERROR = "not UTF-8 after decoding (bytes " + from.toString() + ".." + to.toString() + ")";
    return null;
  }
  return view;
}

/** A growable byte buffer: the JSON is written as bytes, never as UTF-16 strings, so
 *  the work stays linear in the body size. */
class Writer {
  buf: Uint8Array = new Uint8Array(256);
  len: i32 = 0;

  reserve(n: i32): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    memory.copy(next.dataStart, this.buf.dataStart, this.len);
    this.buf = next;
  }

  byte(c: u8): void {
    this.reserve(1);
    this.buf[this.len++] = c;
  }

  /** `s` as a JSON string: quotes, backslashes and control characters escaped; the
   *  bytes are valid UTF-8 already and are copied as they are. */
  jsonString(s: Uint8Array): void {
    // room for the worst case (every byte a \u00XX escape), so the stores need no checks
    this.reserve(s.length * 6 + 2);
    const b = this.buf.dataStart;
    const src = s.dataStart;
    let n = <usize>this.len;
    store<u8>(b + n++, 34);
    for (let i = 0; i < s.length; i++) {
      const c = load<u8>(src + i);
      if (c == 34 || c == 92) {
        store<u8>(b + n++, 92);
        store<u8>(b + n++, c);
      } else if (c < 0x20) {
        store<u8>(b + n++, 92);
        store<u8>(b + n++, 117); // \u00XX
        store<u8>(b + n++, 48);
        store<u8>(b + n++, 48);
        store<u8>(b + n++, <u8>HEXDIGITS.charCodeAt(c >> 4));
        store<u8>(b + n++, <u8>HEXDIGITS.charCodeAt(c & 15));
      } else {
        store<u8>(b + n++, c);
      }
    }
    store<u8>(b + n++, 34);
    this.len = <i32>n;
  }

  result(): ArrayBuffer {
    return this.buf.slice(0, this.len).buffer;
  }
}

const HEXDIGITS = "0123456789abcdef";

/** The form as JSON bytes; null with DECODE_ERROR set when the body is malformed.
 *  Keys keep their first-seen order; a repeated key or a `key[]` makes an array. */
export function formToJson(body: Uint8Array, repeated: Repeated): ArrayBuffer | null {
  const index = new Map<string, i32>();
  const keys = new Array<Uint8Array>();
  const values = new Array<Array<Uint8Array>>();
  const forced = new Array<bool>();
  let start = 0;
  for (let i = 0; i <= body.length; i++) {
    if (i < body.length && body[i] != 38) continue;
    if (i > start) {
      let eq = start;
      while (eq < i && body[eq] != 61) eq++;
      let key = decodeComponent(body, start, eq);
      if (key === null) return null;
      const value = eq < i ? decodeComponent(body, eq + 1, i) : new Uint8Array(0);
      if (value === null) return null;
      let isArray = false;
      const kl = key.length;
      if (kl >= 2 && key[kl - 2] == 91 && key[kl - 1] == 93) {
        key = key.subarray(0, kl - 2);
        isArray = true;
      }
      const name = String.UTF8.decodeUnsafe(key.dataStart, key.length);
      if (index.has(name)) {
        const at = index.get(name);
        values[at].push(value);
        if (isArray) forced[at] = true;
      } else {
        index.set(name, keys.length);
        keys.push(key);
        values.push([value]);
        forced.push(isArray);
      }
    }
    start = i + 1;
  }
  const w = new Writer();
  w.byte(123);
  for (let k = 0; k < keys.length; k++) {
    if (k > 0) w.byte(44);
    w.jsonString(keys[k]);
    w.byte(58);
    const vs = values[k];
    if (forced[k] || (vs.length > 1 && repeated == Repeated.Array)) {
      w.byte(91);
      for (let j = 0; j < vs.length; j++) {
        if (j > 0) w.byte(44);
        w.jsonString(vs[j]);
      }
      w.byte(93);
    } else {
      w.jsonString(repeated == Repeated.First ? vs[0] : vs[vs.length - 1]);
    }
  }
  w.byte(125);
  return w.result();
}

function isForm(contentType: string | null): bool {
  if (contentType === null) return false;
  const semi = contentType.indexOf(";");
  const media = (semi < 0 ? contentType : contentType.substring(0, semi)).trim().toLowerCase();
  return media == "application/x-www-form-urlencoded";
}

class Root extends RootContext {
  config: Config | null = null;

  onConfigure(size: u32): bool {
    const json = this.getPluginConfigurationJson();
    if (json === null) {
      this.log(LogLevel.Error, "form-to-json: configuration: " + jsonError());
      return false;
    }
    const c = parseConfig(json);
    if (c === null) {
      this.log(LogLevel.Error, "form-to-json: " + CONFIG_ERROR);
      return false;
    }
    this.config = c;
    convertedMetric = hostcalls.defineMetric(MetricType.Counter, "converted");
    rejectedMetric = hostcalls.defineMetric(MetricType.Counter, "rejected");
    return true;
  }

  createHttpContext(contextId: u32): HttpContext | null {
    const c = this.config;
    return c === null ? null : new Transcode(contextId, c);
  }
}

class Transcode extends HttpContext {
  active: bool = false;

  constructor(contextId: u32, public config: Config) {
    super(contextId);
  }

  reject(status: u32, message: string): Action {
    this.active = false;
    hostcalls.incrementMetric(rejectedMetric, 1);
    this.log(LogLevel.Warn, "form-to-json: " + status.toString() + " " + message);
    this.sendHttpResponse(status, [new Header("content-type", "text/plain; charset=utf-8")], String.UTF8.encode(message + "\n"));
    return Action.Pause;
  }

  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    if (endOfStream || !isForm(this.getHttpRequestHeader("content-type"))) return Action.Continue;
    const len = this.getHttpRequestHeader("content-length");
    if (len !== null) {
      const n = I64.parseInt(len.trim());
      if (n > <i64>this.config.maxBodyBytes) return this.reject(413, "form body larger than max_body_bytes");
    }
    this.active = true;
    // hold the headers: Content-Type and Content-Length change once the body is converted
    return Action.Pause;
  }

  onHttpRequestBody(bodySize: u32, endOfStream: bool): Action {
    if (!this.active) return Action.Continue;
    if (bodySize > this.config.maxBodyBytes) return this.reject(413, "form body larger than max_body_bytes");
    if (!endOfStream) return Action.Pause;
    this.active = false;
    const body = bytesOf(this.getHttpRequestBody(0, bodySize));
    const out = formToJson(body, this.config.repeated);
    if (out === null) return this.reject(400, "malformed form body: " + DECODE_ERROR);
    this.setHttpRequestBody(0, bodySize, out);
    this.setHttpRequestHeader("content-type", this.config.contentType);
    this.setHttpRequestHeader("content-length", out.byteLength.toString());
    hostcalls.incrementMetric(convertedMetric, 1);
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id), "form-to-json");
