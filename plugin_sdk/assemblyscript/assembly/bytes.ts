// Byte helpers plugins keep needing: hex, constant-time comparison, UTF-8 views.

const HEXCHARS = "0123456789abcdef";

export function toHex(data: Uint8Array): string {
  // one array and one string: concatenating per byte allocated three strings a byte
  const codes = new Array<i32>(data.length * 2);
  for (let i = 0; i < data.length; i++) {
    unchecked((codes[2 * i] = HEXCHARS.charCodeAt(data[i] >> 4)));
    unchecked((codes[2 * i + 1] = HEXCHARS.charCodeAt(data[i] & 15)));
  }
  return String.fromCharCodes(codes);
}

function hexNibble(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Decodes hex (either case); null for odd length or a non-hex character. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 != 0) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const h = hexNibble(s.charCodeAt(2 * i));
    const l = hexNibble(s.charCodeAt(2 * i + 1));
    if (h < 0 || l < 0) return null;
    out[i] = <u8>((h << 4) | l);
  }
  return out;
}

/** Compares without an early exit, so timing does not reveal where inputs differ. */
export function constantTimeEquals(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  let diff: u32 = 0;
  for (let i = 0; i < a.length; i++) diff |= <u32>(a[i] ^ b[i]);
  return diff == 0;
}

export function utf8Bytes(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

export function bytesOf(buf: ArrayBuffer | null): Uint8Array {
  return buf ? Uint8Array.wrap(buf) : new Uint8Array(0);
}
