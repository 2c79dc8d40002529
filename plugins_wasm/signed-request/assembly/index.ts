// signed-request: verifies an HMAC-SHA256 request signature (see README.md).
//
// String to sign, lines joined by "\n":
//   METHOD, PATH (with query, as sent), TIMESTAMP, one "name:value" line per signed
//   header (in configured order, value trimmed, "" when absent), hex(SHA-256(body)).
// The signature header carries hex(HMAC-SHA256(secret, string_to_sign)).

import {
  Action, Context, Header, HttpContext, JsonValue, LogLevel, MetricType, RootContext,
  bytesOf, constantTimeEquals, fromHex, jsonError, registerRootContext, toHex, utf8Bytes,
} from "@edge/proxy-wasm-sdk/assembly/index";
import * as hostcalls from "@edge/proxy-wasm-sdk/assembly/hostcalls";
import { Sha256, hmacSha256 } from "./sha256";
// request phases only: responses never enter the VM and keep their upstream framing
export * from "@edge/proxy-wasm-sdk/assembly/exports_base";
export { proxy_on_request_headers, proxy_on_request_body } from "@edge/proxy-wasm-sdk/assembly/exports";

class Config {
  keyIds: string[] = [];
  secrets: Uint8Array[] = [];
  signedHeaders: string[] = [];
  skewSeconds: i64 = 300;
  signatureHeader: string = "x-edge-signature";
  timestampHeader: string = "x-edge-timestamp";
  keyIdHeader: string = "x-edge-key-id";
  maxBodyBytes: u32 = 1048576;
}

const KNOWN = [
  "keys", "secret_encoding", "signed_headers", "clock_skew_seconds", "signature_header",
  "timestamp_header", "key_id_header", "max_body_bytes",
];

let CONFIG_ERROR = "";

function bad(field: string, message: string): Config | null {
  CONFIG_ERROR = "config field '" + field + "': " + message;
  return null;
}

function headerName(conf: JsonValue, field: string, fallback: string): string | null {
  const v = conf.get(field);
  if (v === null) return fallback;
  if (!v.isString() || v.text.length == 0) return null;
  return v.text.toLowerCase();
}

function parseConfig(conf: JsonValue): Config | null {
  if (!conf.isObject()) return bad("(root)", "expected a JSON object");
  for (let i = 0; i < conf.keys.length; i++) {
    if (!KNOWN.includes(conf.keys[i])) return bad(conf.keys[i], "unknown field");
  }
  const c = new Config();
  let hex = false;
  const enc = conf.get("secret_encoding");
  if (enc !== null) {
    if (enc.isString() && enc.text == "hex") hex = true;
    else if (!(enc.isString() && enc.text == "utf8")) return bad("secret_encoding", "expected \"utf8\" or \"hex\"");
  }
  const keys = conf.get("keys");
  if (keys === null || !keys.isObject() || keys.keys.length == 0) {
    return bad("keys", "expected an object of key id -> secret with at least one key");
  }
  for (let i = 0; i < keys.keys.length; i++) {
    const id = keys.keys[i];
    const s = keys.items[i];
    if (!s.isString() || s.text.length == 0) return bad("keys." + id, "expected a non-empty string");
    let secret: Uint8Array;
    if (hex) {
      const d = fromHex(s.text);
      if (d === null) return bad("keys." + id, "expected hex (secret_encoding is hex)");
      secret = d;
    } else {
      secret = utf8Bytes(s.text);
    }
    if (secret.length < 16) return bad("keys." + id, "secret shorter than 16 bytes");
    c.keyIds.push(id);
    c.secrets.push(secret);
  }
  const sh = conf.get("signed_headers");
  if (sh !== null) {
    if (!sh.isArray()) return bad("signed_headers", "expected a list of header names");
    for (let i = 0; i < sh.items.length; i++) {
      const h = sh.items[i];
      if (!h.isString() || h.text.length == 0) return bad("signed_headers[" + i.toString() + "]", "expected a header name");
      c.signedHeaders.push(h.text.toLowerCase());
    }
  }
  const skew = conf.get("clock_skew_seconds");
  if (skew !== null) {
    const n = skew.asInt();
    if (n < 1 || n > 86400) return bad("clock_skew_seconds", "expected an integer from 1 to 86400");
    c.skewSeconds = n;
  }
  const mb = conf.get("max_body_bytes");
  if (mb !== null) {
    const n = mb.asInt();
    if (n < 0 || n > 67108864) return bad("max_body_bytes", "expected an integer from 0 to 67108864");
    c.maxBodyBytes = <u32>n;
  }
  const sig = headerName(conf, "signature_header", c.signatureHeader);
  if (sig === null) return bad("signature_header", "expected a header name");
  c.signatureHeader = sig;
  const ts = headerName(conf, "timestamp_header", c.timestampHeader);
  if (ts === null) return bad("timestamp_header", "expected a header name");
  c.timestampHeader = ts;
  const kid = headerName(conf, "key_id_header", c.keyIdHeader);
  if (kid === null) return bad("key_id_header", "expected a header name");
  c.keyIdHeader = kid;
  return c;
}

let rejectedMetric: u32 = 0;
let acceptedMetric: u32 = 0;

class Root extends RootContext {
  config: Config | null = null;

  onConfigure(size: u32): bool {
    const json = this.getPluginConfigurationJson();
    if (json === null) {
      this.log(LogLevel.Error, "signed-request: configuration: " + jsonError());
      return false;
    }
    const c = parseConfig(json);
    if (c === null) {
      this.log(LogLevel.Error, "signed-request: " + CONFIG_ERROR);
      return false;
    }
    this.config = c;
    rejectedMetric = hostcalls.defineMetric(MetricType.Counter, "rejected");
    acceptedMetric = hostcalls.defineMetric(MetricType.Counter, "accepted");
    return true;
  }

  createHttpContext(contextId: u32): HttpContext | null {
    const c = this.config;
    if (c === null) return null;
    return new Verifier(contextId, c);
  }
}

function trimmed(v: string | null): string {
  return v === null ? "" : v.trim();
}

/** The first value of `name` (lower-case) in `headers`, or null. */
function find(headers: Header[], name: string): string | null {
  for (let i = 0; i < headers.length; i++) {
    if (headers[i].key == name) return headers[i].value;
  }
  return null;
}

class Verifier extends HttpContext {
  secret: Uint8Array | null = null;
  keyId: string = "";
  stringToSignHead: string = "";
  signature: Uint8Array | null = null;
  decided: bool = false;

  constructor(contextId: u32, public config: Config) {
    super(contextId);
  }

  reject(reason: string): Action {
    this.decided = true;
    hostcalls.incrementMetric(rejectedMetric, 1);
    // the reason goes to the log (and the client); never the secret or the signature
    this.log(LogLevel.Warn, "signed-request: rejected key=" + this.keyId + " reason=" + reason);
    const body = String.UTF8.encode("{\"error\":\"invalid signature\",\"reason\":\"" + reason + "\"}");
    this.sendHttpResponse(401, [
      new Header("content-type", "application/json"),
      new Header("www-authenticate", "HMAC-SHA256 headers=\"" + this.config.signedHeaders.join(";") + "\""),
    ], body);
    return Action.Pause;
  }

  /** A request header as getHttpRequestHeader answers it, read from `headers`: "host"
   *  is not in the map on every host (edge and Envoy carry it as :authority), so that
   *  one is still asked for by name. */
  header(headers: Header[], name: string): string | null {
    return name == "host" ? this.getHttpRequestHeader(name) : find(headers, name);
  }

  onHttpRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const c = this.config;
    // one hostcall for the whole map instead of one per header: each costs a call
    // into the host and an allocation through malloc
    const headers = this.getHttpRequestHeaders();
    const sigText = this.header(headers, c.signatureHeader);
    const tsText = this.header(headers, c.timestampHeader);
    if (sigText === null) return this.reject("missing " + c.signatureHeader);
    if (tsText === null) return this.reject("missing " + c.timestampHeader);
    const kid = this.header(headers, c.keyIdHeader);
    if (kid === null) {
      if (c.keyIds.length != 1) return this.reject("missing " + c.keyIdHeader);
      this.keyId = c.keyIds[0];
    } else {
      this.keyId = kid.length <= 64 ? kid : kid.substring(0, 64);
    }
    const idx = c.keyIds.indexOf(this.keyId);
    if (idx < 0) return this.reject("unknown key id");
    this.secret = c.secrets[idx];
    const sig = fromHex(trimmed(sigText));
    if (sig === null || sig.length != 32) return this.reject("malformed signature");
    this.signature = sig;
    const ts = trimmed(tsText);
    if (ts.length == 0 || ts.length > 12) return this.reject("malformed timestamp");
    let seconds: i64 = 0;
    for (let i = 0; i < ts.length; i++) {
      const d = ts.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return this.reject("malformed timestamp");
      seconds = seconds * 10 + d;
    }
    const now = <i64>(this.getCurrentTimeNanoseconds() / 1000000000);
    const skew = now > seconds ? now - seconds : seconds - now;
    if (skew > c.skewSeconds) return this.reject("timestamp outside the allowed clock skew");

    const method = find(headers, ":method");
    const path = find(headers, ":path");
    let head = (method ? method : "") + "\n" + (path ? path : "") + "\n" + ts + "\n";
    for (let i = 0; i < c.signedHeaders.length; i++) {
      head += c.signedHeaders[i] + ":" + trimmed(this.header(headers, c.signedHeaders[i])) + "\n";
    }
    this.stringToSignHead = head;
    if (endOfStream) return this.verify(new Uint8Array(0));
    // hold the request (headers and body) until the body hash is known
    return Action.Pause;
  }

  onHttpRequestBody(bodySize: u32, endOfStream: bool): Action {
    if (this.decided) return Action.Continue;
    if (bodySize > this.config.maxBodyBytes) {
      this.decided = true;
      hostcalls.incrementMetric(rejectedMetric, 1);
      this.log(LogLevel.Warn, "signed-request: rejected key=" + this.keyId + " reason=body larger than max_body_bytes");
      this.sendHttpResponse(413, [new Header("content-type", "text/plain")], String.UTF8.encode("request body too large to verify\n"));
      return Action.Pause;
    }
    if (!endOfStream) return Action.Pause;
    return this.verify(bytesOf(this.getHttpRequestBody(0, bodySize)));
  }

  verify(body: Uint8Array): Action {
    const bodyHash = toHex(new Sha256().update(body).digest());
    const message = utf8Bytes(this.stringToSignHead + bodyHash);
    const expected = hmacSha256(this.secret!, message);
    if (!constantTimeEquals(expected, this.signature!)) return this.reject("signature mismatch");
    this.decided = true;
    hostcalls.incrementMetric(acceptedMetric, 1);
    return Action.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id), "signed-request");
