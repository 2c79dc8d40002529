// A small JSON reader and writer over strings (no npm dependencies). Numbers keep their
// source text; nesting is capped because configurations and bodies come from outside.

export const MAX_DEPTH = 64;

export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  /** String value, or a number's source text. */
  text: string = "";
  items: JsonValue[] = [];
  keys: string[] = [];

  static object(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    return v;
  }

  isNull(): bool {
    return this.kind == JsonKind.Null;
  }

  isString(): bool {
    return this.kind == JsonKind.String;
  }

  isNumber(): bool {
    return this.kind == JsonKind.Number;
  }

  isBool(): bool {
    return this.kind == JsonKind.Bool;
  }

  isArray(): bool {
    return this.kind == JsonKind.Array;
  }

  isObject(): bool {
    return this.kind == JsonKind.Object;
  }

  /** A member of an object (the first with that key), or null. */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object) return null;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) return this.items[i];
    }
    return null;
  }

  /** A non-negative integer (digits only), or -1. */
  asInt(): i64 {
    if (this.kind != JsonKind.Number || this.text.length == 0 || this.text.length > 15) return -1;
    let n: i64 = 0;
    for (let i = 0; i < this.text.length; i++) {
      const c = this.text.charCodeAt(i);
      if (c < 48 || c > 57) return -1;
      n = n * 10 + (c - 48);
    }
    return n;
  }

  toJson(): string {
    switch (this.kind) {
      case JsonKind.Null:
        return "null";
      case JsonKind.Bool:
        return this.bool ? "true" : "false";
      case JsonKind.Number:
        return this.text;
      case JsonKind.String:
        return quoteJson(this.text);
      case JsonKind.Array: {
        const parts = new Array<string>(this.items.length);
        for (let i = 0; i < this.items.length; i++) parts[i] = this.items[i].toJson();
        return "[" + parts.join(",") + "]";
      }
      default: {
        const parts = new Array<string>(this.items.length);
        for (let i = 0; i < this.items.length; i++) parts[i] = quoteJson(this.keys[i]) + ":" + this.items[i].toJson();
        return "{" + parts.join(",") + "}";
      }
    }
  }
}

const HEX = "0123456789abcdef";

/** `s` as a quoted JSON string with the escapes JSON requires. */
export function quoteJson(s: string): string {
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc = "";
    if (c == 34) esc = '\\"';
    else if (c == 92) esc = "\\\\";
    else if (c == 10) esc = "\\n";
    else if (c == 13) esc = "\\r";
    else if (c == 9) esc = "\\t";
    else if (c < 0x20) esc = "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    else continue;
    out += s.substring(from, i) + esc;
    from = i + 1;
  }
  return out + s.substring(from) + '"';
}

let ERROR = "";

/** Why the last parseJson returned null ("invalid JSON at offset N: ..."). */
export function jsonError(): string {
  return ERROR;
}

class Parser {
  pos: i32 = 0;
  failed: bool = false;
  constructor(public s: string) {}

  fail(message: string): JsonValue {
    if (!this.failed) ERROR = "invalid JSON at offset " + this.pos.toString() + ": " + message;
    this.failed = true;
    return new JsonValue();
  }

  peek(): i32 {
    return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1;
  }

  ws(): void {
    while (true) {
      const c = this.peek();
      if (c == 32 || c == 9 || c == 10 || c == 13) this.pos++;
      else break;
    }
  }

  literal(word: string): bool {
    if (this.s.substr(this.pos, word.length) == word) {
      this.pos += word.length;
      return true;
    }
    return false;
  }

  value(depth: i32): JsonValue {
    if (depth > MAX_DEPTH) return this.fail("nesting too deep");
    const c = this.peek();
    const v = new JsonValue();
    if (c == -1) return this.fail("unexpected end of input");
    if (c == 110) {
      if (!this.literal("null")) return this.fail("unknown literal");
      return v;
    }
    if (c == 116 || c == 102) {
      v.kind = JsonKind.Bool;
      v.bool = c == 116;
      if (!this.literal(v.bool ? "true" : "false")) return this.fail("unknown literal");
      return v;
    }
    if (c == 34) {
      v.kind = JsonKind.String;
      v.text = this.string();
      return v;
    }
    if (c == 91) {
      v.kind = JsonKind.Array;
      this.pos++;
      this.ws();
      if (this.peek() == 93) {
        this.pos++;
        return v;
      }
      while (!this.failed) {
        this.ws();
        v.items.push(this.value(depth + 1));
        this.ws();
        const d = this.peek();
        if (d == 44) this.pos++;
        else if (d == 93) {
          this.pos++;
          return v;
        } else return this.fail("expected ',' or ']'");
      }
      return v;
    }
    if (c == 123) {
      v.kind = JsonKind.Object;
      this.pos++;
      this.ws();
      if (this.peek() == 125) {
        this.pos++;
        return v;
      }
      while (!this.failed) {
        this.ws();
        if (this.peek() != 34) return this.fail("expected a string key");
        v.keys.push(this.string());
        this.ws();
        if (this.peek() != 58) return this.fail("expected ':'");
        this.pos++;
        this.ws();
        v.items.push(this.value(depth + 1));
        this.ws();
        const d = this.peek();
        if (d == 44) this.pos++;
        else if (d == 125) {
          this.pos++;
          return v;
        } else return this.fail("expected ',' or '}'");
      }
      return v;
    }
    if (c == 45 || (c >= 48 && c <= 57)) {
      v.kind = JsonKind.Number;
      v.text = this.number();
      return v;
    }
    return this.fail("unexpected character");
  }

  digits(): i32 {
    const from = this.pos;
    while (this.peek() >= 48 && this.peek() <= 57) this.pos++;
    return this.pos - from;
  }

  number(): string {
    const start = this.pos;
    if (this.peek() == 45) this.pos++;
    if (this.digits() == 0) {
      this.fail("expected digits");
      return "";
    }
    if (this.peek() == 46) {
      this.pos++;
      if (this.digits() == 0) {
        this.fail("expected digits after '.'");
        return "";
      }
    }
    if (this.peek() == 101 || this.peek() == 69) {
      this.pos++;
      if (this.peek() == 43 || this.peek() == 45) this.pos++;
      if (this.digits() == 0) {
        this.fail("expected exponent digits");
        return "";
      }
    }
    return this.s.substring(start, this.pos);
  }

  hex4(): i32 {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.peek();
      let d = -1;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      if (d < 0) {
        this.fail("bad \\u escape");
        return 0;
      }
      v = v * 16 + d;
      this.pos++;
    }
    return v;
  }

  string(): string {
    this.pos++; // opening quote
    let out = "";
    let from = this.pos;
    while (true) {
      const c = this.peek();
      if (c == -1) {
        this.fail("unterminated string");
        return "";
      }
      if (c == 34) {
        out += this.s.substring(from, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) {
        this.fail("control character in string");
        return "";
      }
      if (c != 92) {
        this.pos++;
        continue;
      }
      out += this.s.substring(from, this.pos);
      this.pos++;
      const e = this.peek();
      this.pos++;
      if (e == 34) out += '"';
      else if (e == 92) out += "\\";
      else if (e == 47) out += "/";
      else if (e == 98) out += "\b";
      else if (e == 102) out += "\f";
      else if (e == 110) out += "\n";
      else if (e == 114) out += "\r";
      else if (e == 116) out += "\t";
      else if (e == 117) out += String.fromCharCode(this.hex4());
      else {
        this.fail("bad escape");
        return "";
      }
      if (this.failed) return "";
      from = this.pos;
    }
  }
}

/** Parses `text`; null (and jsonError() set) when it is not valid JSON. */
export function parseJson(text: string): JsonValue | null {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  if (p.failed) return null;
  p.ws();
  if (p.pos != text.length) {
    p.fail("trailing characters after the value");
    return null;
  }
  return v;
}
