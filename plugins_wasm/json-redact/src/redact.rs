//! Redaction over JSON bytes, sans-IO. The document is walked once with the SDK's
//! scanner; bytes are copied through unchanged except the values at masked paths, so
//! formatting, key order and number spelling survive.
//!
//! Path syntax: segments separated by `.`; `*` matches any key or array element; a
//! number matches that array index; `a[]`, `a[*]` and `a[2]` are sugar for `a.*` and
//! `a.2`. Arrays are transparent to name segments: `users.ssn` masks `ssn` in every
//! element of the `users` array.

use edge_proxy_wasm::json::{write_string, ParseError, Scanner, MAX_DEPTH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
    Any,
}

pub type Path = Vec<Seg>;

/// Parses one dotted path; `Err` says what is wrong with it.
pub fn parse_path(text: &str) -> Result<Path, String> {
    if text.is_empty() {
        return Err("empty path".to_string());
    }
    let mut out = Vec::new();
    for part in text.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && rest.is_empty() {
            return Err(format!("empty segment in '{}'", text));
        }
        if !name.is_empty() {
            out.push(if name == "*" {
                Seg::Any
            } else if name.bytes().all(|c| c.is_ascii_digit()) {
                Seg::Index(name.parse().map_err(|_| format!("index too large in '{}'", text))?)
            } else {
                Seg::Key(name.to_string())
            });
        }
        let mut r = rest;
        while !r.is_empty() {
            let close = match r.find(']') {
                Some(c) if r.starts_with('[') => c,
                _ => return Err(format!("unbalanced '[' in '{}'", text)),
            };
            let inner = &r[1..close];
            out.push(if inner.is_empty() || inner == "*" {
                Seg::Any
            } else {
                match inner.parse() {
                    Ok(n) => Seg::Index(n),
                    Err(_) => return Err(format!("'[{}]' is not an index in '{}'", inner, text)),
                }
            });
            r = &r[close + 1..];
        }
    }
    Ok(out)
}

/// (path index, how many segments matched so far)
type State = (usize, usize);

struct Redactor<'a> {
    paths: &'a [Path],
    mask: String,
    out: Vec<u8>,
    count: usize,
}

impl<'a> Redactor<'a> {
    fn value(&mut self, s: &mut Scanner, states: &[State], depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            return Err(s.err("nesting too deep"));
        }
        let start = s.pos;
        if states.iter().any(|&(p, n)| n == self.paths[p].len()) {
            s.skip_value(depth)?;
            self.out.extend_from_slice(self.mask.as_bytes());
            self.count += 1;
            return Ok(());
        }
        match s.peek() {
            Some(b'{') if !states.is_empty() => {
                s.pos += 1;
                self.out.push(b'{');
                self.copy_ws(s);
                if s.peek() == Some(b'}') {
                    s.pos += 1;
                    self.out.push(b'}');
                    return Ok(());
                }
                loop {
                    self.copy_ws(s);
                    let key_start = s.pos;
                    let key = s.string()?;
                    self.out.extend_from_slice(&s.buf[key_start..s.pos]);
                    self.copy_ws(s);
                    s.expect(b':', "expected ':'")?;
                    self.out.push(b':');
                    self.copy_ws(s);
                    let next: Vec<State> = states
                        .iter()
                        .filter(|&&(p, n)| match &self.paths[p][n] {
                            Seg::Key(k) => *k == key,
                            Seg::Any => true,
                            Seg::Index(_) => false,
                        })
                        .map(|&(p, n)| (p, n + 1))
                        .collect();
                    self.value(s, &next, depth + 1)?;
                    self.copy_ws(s);
                    match s.peek() {
                        Some(b',') => {
                            s.pos += 1;
                            self.out.push(b',');
                        }
                        Some(b'}') => {
                            s.pos += 1;
                            self.out.push(b'}');
                            return Ok(());
                        }
                        _ => return Err(s.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') if !states.is_empty() => {
                s.pos += 1;
                self.out.push(b'[');
                self.copy_ws(s);
                if s.peek() == Some(b']') {
                    s.pos += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                let mut index = 0usize;
                loop {
                    self.copy_ws(s);
                    let next: Vec<State> = states
                        .iter()
                        .filter_map(|&(p, n)| match &self.paths[p][n] {
                            Seg::Any => Some((p, n + 1)),
                            Seg::Index(i) if *i == index => Some((p, n + 1)),
                            Seg::Index(_) => None,
                            // arrays are transparent to names
                            Seg::Key(_) => Some((p, n)),
                        })
                        .collect();
                    self.value(s, &next, depth + 1)?;
                    index += 1;
                    self.copy_ws(s);
                    match s.peek() {
                        Some(b',') => {
                            s.pos += 1;
                            self.out.push(b',');
                        }
                        Some(b']') => {
                            s.pos += 1;
                            self.out.push(b']');
                            return Ok(());
                        }
                        _ => return Err(s.err("expected ',' or ']'")),
                    }
                }
            }
            _ => {
                // no path can match below here: validate and copy verbatim
                let end = s.skip_value(depth)?;
                self.out.extend_from_slice(&s.buf[start..end]);
                Ok(())
            }
        }
    }

    fn copy_ws(&mut self, s: &mut Scanner) {
        let from = s.pos;
        s.ws();
        self.out.extend_from_slice(&s.buf[from..s.pos]);
    }
}

/// Masks every value at `paths` in `input`; returns the new bytes and how many values
/// were masked, or where the input stops being valid JSON.
pub fn redact(input: &[u8], paths: &[Path], mask: &str) -> Result<(Vec<u8>, usize), ParseError> {
    let mut quoted = String::new();
    write_string(&mut quoted, mask);
    let mut r = Redactor { paths, mask: quoted, out: Vec::with_capacity(input.len()), count: 0 };
    let mut s = Scanner::new(input);
    r.copy_ws(&mut s);
    let states: Vec<State> = (0..paths.len()).map(|p| (p, 0)).collect();
    r.value(&mut s, &states, 0)?;
    r.copy_ws(&mut s);
    if s.pos != input.len() {
        return Err(s.err("trailing characters after the value"));
    }
    Ok((r.out, r.count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(doc: &str, paths: &[&str]) -> (String, usize) {
        let ps: Vec<Path> = paths.iter().map(|p| parse_path(p).unwrap()).collect();
        let (out, n) = redact(doc.as_bytes(), &ps, "***").unwrap();
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn masks_nested_and_arrays_keeping_format() {
        let doc = r#"{ "user": {"name": "a", "ssn": "123"}, "cards": [{"number": 4111, "exp": "1/30"}, {"number": {"x": 1}}], "n": 1.50 }"#;
        let (out, n) = run(doc, &["user.ssn", "cards.number"]);
        assert_eq!(out, r#"{ "user": {"name": "a", "ssn": "***"}, "cards": [{"number": "***", "exp": "1/30"}, {"number": "***"}], "n": 1.50 }"#);
        assert_eq!(n, 3);
    }

    #[test]
    fn wildcards_and_indexes() {
        assert_eq!(run(r#"{"a":[{"k":1},{"k":2}]}"#, &["a[1].k"]).0, r#"{"a":[{"k":1},{"k":"***"}]}"#);
        assert_eq!(run(r#"{"a":{"x":{"s":1},"y":{"s":2}}}"#, &["a.*.s"]).0, r#"{"a":{"x":{"s":"***"},"y":{"s":"***"}}}"#);
        assert_eq!(run(r#"[{"t":"x"},{"t":"y"}]"#, &["t"]).0, r#"[{"t":"***"},{"t":"***"}]"#);
        assert_eq!(run(r#"{"a":[1,2]}"#, &["a[]"]).0, r#"{"a":["***","***"]}"#);
    }

    #[test]
    fn invalid_json_and_paths() {
        let ps = vec![parse_path("a").unwrap()];
        assert!(redact(b"{\"a\":1", &ps, "x").is_err());
        assert!(redact(b"{\"b\":[1,}", &ps, "x").is_err());
        assert!(redact(b"{} x", &ps, "x").is_err());
        assert!(parse_path("").is_err());
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("a[1").is_err());
    }
}
