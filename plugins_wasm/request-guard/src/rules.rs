//! Signature matching, sans-IO: text in, the first matching rule out.
//!
//! Inputs are normalised before matching so the usual evasions collapse onto one form:
//! percent-decoding applied twice (double encoding), `+` as space where the target is
//! form-encoded, lower-case, SQL comments and whitespace runs folded to one space.

/// Built-in signature sets; the names are the rule ids in config, logs and metrics.
pub const RULE_SETS: [&str; 3] = ["path_traversal", "sql_injection", "xss"];

const PATH_TRAVERSAL: &[&str] = &[
    "../", "..\\", "..;/", "/..", "\0", "/etc/passwd", "/etc/shadow", "/proc/self/", "c:\\windows",
    "boot.ini",
];

const SQL_INJECTION: &[&str] = &[
    "union select", "union all select", "' or ", "\" or ", "' and ", "\" and ", " or 1=1",
    "' or'", "or '1'='1", "'--", "'#", "';", "\";", "; drop ", "drop table", "insert into ",
    "delete from ", "information_schema", "sleep(", "benchmark(", "waitfor delay", "pg_sleep(",
    "xp_cmdshell", "load_file(", "into outfile", "@@version",
];

const XSS: &[&str] = &[
    "<script", "</script", "javascript:", "vbscript:", "<iframe", "<object", "<embed", "<svg",
    "<img", "<body", "srcdoc=", "document.cookie", "document.domain", "alert(", "prompt(",
    "eval(", "expression(", "String.fromCharCode(",
];

/// Which part of the request a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Path,
    Query,
    Header,
    Body,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Path => "path",
            Target::Query => "query",
            Target::Header => "headers",
            Target::Body => "body",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "path" => Some(Target::Path),
            "query" => Some(Target::Query),
            "headers" => Some(Target::Header),
            "body" => Some(Target::Body),
            _ => None,
        }
    }
}

/// One compiled rule: a set of lower-case signatures and the targets it looks at.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// Normalised signatures (bytes: a percent-decoded custom signature need not be UTF-8).
    pub signatures: Vec<Vec<u8>>,
    /// `on<letters>=` event handler attributes (XSS), which substrings cannot express.
    pub event_handlers: bool,
    pub targets: Vec<Target>,
}

pub fn builtin(id: &str, targets: Vec<Target>) -> Option<Rule> {
    let (sigs, handlers): (&[&str], bool) = match id {
        "path_traversal" => (PATH_TRAVERSAL, false),
        "sql_injection" => (SQL_INJECTION, false),
        "xss" => (XSS, true),
        _ => return None,
    };
    Some(Rule {
        id: id.to_string(),
        signatures: sigs.iter().map(|s| s.to_ascii_lowercase().into_bytes()).collect(),
        event_handlers: handlers,
        targets,
    })
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `input` into `out` (cleared first).
fn percent_decode(input: &[u8], plus_as_space: bool, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if plus_as_space && c == b'+' { b' ' } else { c });
        i += 1;
    }
}

/// Buffers reused from one normalisation to the next, so matching a request allocates
/// nothing once they have grown to the usual header sizes.
#[derive(Default)]
pub struct Scratch {
    once: Vec<u8>,
    twice: Vec<u8>,
    text: Vec<u8>,
}

impl Scratch {
    /// The canonical form signatures are matched against (see `normalise`).
    pub fn normalise<'a>(&'a mut self, input: &'a [u8], form_encoded: bool) -> &'a [u8] {
        // most values are canonical already (lower-case, nothing to decode or fold):
        // matched as they are, with no copy
        if is_canonical(input, form_encoded) {
            return input;
        }
        self.rewrite(input, form_encoded)
    }

    fn rewrite(&mut self, input: &[u8], form_encoded: bool) -> &[u8] {
        // most values hold nothing to decode: skip the copies, not the rule
        let once: &[u8] = if input.iter().any(|&c| c == b'%' || (form_encoded && c == b'+')) {
            percent_decode(input, form_encoded, &mut self.once);
            &self.once
        } else {
            input
        };
        let twice: &[u8] = if once.contains(&b'%') {
            percent_decode(once, false, &mut self.twice);
            &self.twice
        } else {
            once
        };
        fold(twice, &mut self.text);
        &self.text
    }
}

/// True when `normalise` would return `input` unchanged: nothing percent-encoded (nor a
/// `+` in form-encoded text), no upper case, no whitespace but single spaces, no `/*`.
fn is_canonical(input: &[u8], form_encoded: bool) -> bool {
    let mut prev = 0u8;
    for &c in input {
        if breaks_canonical(c, prev, form_encoded) {
            return false;
        }
        prev = c;
    }
    true
}

// What a byte asks of the one-pass scan (`SPECIAL`; 0, most bytes: nothing)
const NOT_CANONICAL: u8 = 1;
const PLUS: u8 = 2;
const SPACE: u8 = 3;
const STAR: u8 = 4;

pub(crate) static SPECIAL: [u8; 256] = special_bytes();

const fn special_bytes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = b'A';
    while c <= b'Z' {
        t[c as usize] = NOT_CANONICAL;
        c += 1;
    }
    t[b'%' as usize] = NOT_CANONICAL;
    t[b'\t' as usize] = NOT_CANONICAL;
    t[b'\n' as usize] = NOT_CANONICAL;
    t[0x0c] = NOT_CANONICAL;
    t[b'\r' as usize] = NOT_CANONICAL;
    t[b'+' as usize] = PLUS;
    t[b' ' as usize] = SPACE;
    t[b'*' as usize] = STAR;
    t
}

/// True when byte `c`, after `prev`, makes a text not canonical (see `is_canonical`).
#[inline]
pub(crate) fn breaks_canonical(c: u8, prev: u8, form_encoded: bool) -> bool {
    match SPECIAL[c as usize] {
        NOT_CANONICAL => true,
        PLUS => form_encoded,
        SPACE => prev == b' ',
        STAR => prev == b'/',
        _ => false,
    }
}

/// Lower-case, SQL comments and whitespace runs folded to one space, into `out`.
fn fold(src: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    let mut last_space = false;
    while i < src.len() {
        let c = src[i];
        // SQL inline comments are a classic way to split keywords: /**/ counts as a space
        if c == b'/' && src.get(i + 1) == Some(&b'*') {
            let end = src[i + 2..].windows(2).position(|w| w == b"*/");
            i = match end {
                Some(p) => i + 2 + p + 2,
                None => src.len(),
            };
            if !last_space {
                out.push(b' ');
                last_space = true;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            if !last_space {
                out.push(b' ');
                last_space = true;
            }
        } else {
            out.push(c.to_ascii_lowercase());
            last_space = false;
        }
        i += 1;
    }
}

/// The canonical form signatures are matched against: percent-decoded twice (`+` as a
/// space first when form-encoded), then folded (lower-case, comments and whitespace).
pub fn normalise(input: &[u8], form_encoded: bool) -> Vec<u8> {
    Scratch::default().normalise(input, form_encoded).to_vec()
}

/// `on<letters>` followed by optional spaces and `=`, after a non-letter: an HTML event
/// handler attribute (`<img src=x onerror=alert(1)>`).
pub fn has_event_handler(b: &[u8]) -> bool {
    // no `contains(&b'=')` first: memchr costs more than this loop on a short value
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'o' && b[i + 1] == b'n' && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_lowercase() {
                j += 1;
            }
            if j > i + 3 {
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                if j < b.len() && b[j] == b'=' {
                    return true;
                }
            }
        }
        i += 1;
    }
    false
}

impl Rule {
    /// True when the normalised `text` carries one of this rule's signatures: the plain
    /// definition the automaton must agree with (tests compare the two).
    pub fn matches(&self, text: &[u8]) -> bool {
        self.signatures.iter().any(|s| text.windows(s.len()).any(|w| w == s.as_slice()))
            || (self.event_handlers && has_event_handler(text))
    }
}

/// The rules compiled for matching: one automaton over all signatures, and per target
/// the set of rules that look at it.
/// What an event handler attribute has in it: the automaton finds them as it scans.
const HANDLER_MARKS: [&[u8]; 2] = [b"on", b"="];

pub struct RuleSet {
    matcher: crate::matcher::Matcher,
    target_masks: [u64; 4],
    handler_mask: u64,
    scratch: std::cell::RefCell<Scratch>,
}

fn target_index(t: Target) -> usize {
    match t {
        Target::Path => 0,
        Target::Query => 1,
        Target::Header => 2,
        Target::Body => 3,
    }
}

impl RuleSet {
    pub fn build(rules: &[Rule]) -> Result<RuleSet, String> {
        let sigs: Vec<&[Vec<u8>]> = rules.iter().map(|r| r.signatures.as_slice()).collect();
        let matcher = crate::matcher::Matcher::build(&sigs, &HANDLER_MARKS)?;
        let mut target_masks = [0u64; 4];
        let mut handler_mask = 0u64;
        for (i, r) in rules.iter().enumerate() {
            for t in &r.targets {
                target_masks[target_index(*t)] |= 1 << i;
            }
            if r.event_handlers {
                handler_mask |= 1 << i;
            }
        }
        Ok(RuleSet { matcher, target_masks, handler_mask, scratch: Default::default() })
    }

    /// True when some rule looks at `target` (else `first_match` is always `None`).
    pub fn inspects(&self, target: Target) -> bool {
        self.target_masks[target_index(target)] != 0
    }

    /// `found` plus the rules that match `text` by an event handler attribute (which
    /// needs both `HANDLER_MARKS`: `marks` from the scan).
    fn with_handlers(&self, (found, marks): (u64, u8), applicable: u64, text: &[u8]) -> u64 {
        let found = found & applicable;
        let handlers = self.handler_mask & applicable & !found;
        if handlers != 0 && marks == 0b11 && has_event_handler(text) {
            found | handlers
        } else {
            found
        }
    }

    /// The index of the first rule (in configuration order) that matches `raw` as seen
    /// in `target`.
    pub fn first_match(&self, target: Target, raw: &[u8]) -> Option<usize> {
        let applicable = self.target_masks[target_index(target)];
        if applicable == 0 {
            return None;
        }
        let form_encoded = matches!(target, Target::Query | Target::Body);
        let found = match self.matcher.scan_canonical(raw, form_encoded) {
            // the usual value: scanned as it is, in one pass
            Some(found) => self.with_handlers(found, applicable, raw),
            None => {
                let mut scratch = self.scratch.borrow_mut();
                let text = scratch.rewrite(raw, form_encoded);
                self.with_handlers(self.matcher.scan(text), applicable, text)
            }
        };
        if found == 0 {
            None
        } else {
            Some(found.trailing_zeros() as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Rule> {
        let t = vec![Target::Path, Target::Query, Target::Header, Target::Body];
        RULE_SETS.iter().map(|id| builtin(id, t.clone()).unwrap()).collect()
    }

    fn hit(target: Target, s: &str) -> Option<String> {
        let rules = all();
        let set = RuleSet::build(&rules).unwrap();
        set.first_match(target, s.as_bytes()).map(|i| rules[i].id.clone())
    }

    #[test]
    fn attacks_match() {
        assert_eq!(hit(Target::Path, "/static/..%2f..%2fetc/passwd").as_deref(), Some("path_traversal"));
        assert_eq!(hit(Target::Path, "/a/%252e%252e/b").as_deref(), Some("path_traversal"));
        assert_eq!(hit(Target::Query, "id=1%27+OR+%271%27%3D%271").as_deref(), Some("sql_injection"));
        assert_eq!(hit(Target::Query, "q=1 UNION/**/SELECT password").as_deref(), Some("sql_injection"));
        assert_eq!(hit(Target::Query, "q=%3CScRiPt%3Ealert(1)").as_deref(), Some("xss"));
        assert_eq!(hit(Target::Header, "x\" onmouseover = \"steal()").as_deref(), Some("xss"));
    }

    #[test]
    fn benign_passes() {
        for s in ["/api/v1/users/42", "name=O'Brien", "q=union+station", "sort=-created_at",
                  "text=i+love+onions", "mozilla/5.0 (x11; linux x86_64)", "a=1&b=2", "/files/report.v2.pdf"] {
            assert_eq!(hit(Target::Query, s), None, "{}", s);
        }
    }

    #[test]
    fn targets_are_respected() {
        let rules = vec![builtin("xss", vec![Target::Body]).unwrap()];
        let set = RuleSet::build(&rules).unwrap();
        assert!(set.first_match(Target::Query, b"<script>").is_none());
        assert!(set.first_match(Target::Body, b"<script>").is_some());
        assert!(set.first_match(Target::Body, b"<a onclick = x>").is_some());
    }

    #[test]
    fn normalise_folds_and_decodes() {
        assert_eq!(normalise(b"/A/%252E%252e/B", false), b"/a/../b");
        assert_eq!(normalise(b"x=1+UNION/**/Select", true), b"x=1 union select");
        assert_eq!(normalise(b"a+b", false), b"a+b");
        assert_eq!(normalise(b"a \t\n b/*open", false), b"a b ");
        assert_eq!(normalise(b"%ff%4", false), vec![0xff, b'%', b'4']);
    }

    #[test]
    fn canonical_text_is_what_the_rewrite_would_make() {
        let inputs: &[&[u8]] = &[
            b"/api/v1/users/42", b"sort=name", b"a b", b"a  b", b"a\tb", b"/a/*b*/", b"/a/ *b",
            b"x+y", b"%41", b"Mozilla/5.0", b"", b" ", b"\xff\xc0", b"a*/b", b"*/",
        ];
        for raw in inputs {
            for form in [false, true] {
                let slow = Scratch::default().rewrite(raw, form).to_vec();
                if is_canonical(raw, form) {
                    assert_eq!(&slow[..], *raw, "{:?} form={}", raw, form);
                }
                assert_eq!(Scratch::default().normalise(raw, form), &slow[..], "{:?}", raw);
            }
        }
        assert!(is_canonical(b"/api/v1/users/42", false));
        assert!(!is_canonical(b"x+y", true) && is_canonical(b"x+y", false));
    }

    #[test]
    fn scratch_reuse_leaves_nothing_behind() {
        let mut s = Scratch::default();
        assert_eq!(s.normalise(b"/a/very/long/%2e%2e/value/%2541", false), b"/a/very/long/../value/a");
        assert_eq!(s.normalise(b"x", false), b"x");
        assert_eq!(s.normalise(b"%41+b", true), b"a b");
        assert_eq!(s.normalise(b"plain", true), b"plain");
    }

    #[test]
    fn automaton_agrees_with_plain_substring_search() {
        let rules = all();
        let set = RuleSet::build(&rules).unwrap();
        let inputs: &[&[u8]] = &[
            b"/api/v1/users/42", b"q=1%27%20or%201=1", b"<svg/onload=x>", b"a onclick = b",
            b"..%5c..%5cwindows", b"/etc/passwd%00", b"name=O'Brien", b"select * from t",
            b"%253Cscript%253E", b"javascript%3Aalert(1)", b"union%0aselect", b"", b"\xff\xfe",
            b"x';drop table y", b"benchmark(1000,md5(1))", b"i love onions", b"' or'1'='1",
        ];
        for raw in inputs {
            for target in [Target::Path, Target::Query, Target::Header, Target::Body] {
                let text = normalise(raw, matches!(target, Target::Query | Target::Body));
                let naive = rules.iter().position(|r| r.targets.contains(&target) && r.matches(&text));
                assert_eq!(set.first_match(target, raw), naive, "{:?} {:?}", target, raw);
            }
        }
    }

    #[test]
    fn first_rule_in_order_wins() {
        let t = vec![Target::Query];
        let rules = vec![builtin("xss", t.clone()).unwrap(), builtin("sql_injection", t).unwrap()];
        let set = RuleSet::build(&rules).unwrap();
        assert_eq!(set.first_match(Target::Query, b"' or 1=1 <script>"), Some(0));
    }
}
