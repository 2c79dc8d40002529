//! All rules' signatures in one Aho-Corasick automaton, built once in `on_configure`:
//! a request's text is scanned once, whatever the number of signatures (a substring
//! search per signature cost ~100 µs per request).
//!
//! The alphabet is compressed to the bytes that occur in signatures (everything else is
//! class 0), and the automaton is a full DFA (`delta[state][class]`), so the scan is one
//! table lookup per byte. Each state carries the bit set of rules whose signature ends
//! there (through failure links too), so the result is the set of matching rules.

/// Rules are bits of a u64.
pub const MAX_RULES: usize = 64;
/// States are u16 indices.
pub const MAX_STATES: usize = 65_000;

pub struct Matcher {
    classes: [u8; 256],
    nclasses: usize,
    delta: Vec<u16>,
    out: Vec<u64>,
}

impl Matcher {
    /// `signatures[i]` are rule `i`'s (already normalised) signatures.
    pub fn build<S: AsRef<[Vec<u8>]>>(signatures: &[S]) -> Result<Matcher, String> {
        if signatures.len() > MAX_RULES {
            return Err(format!("at most {} rules", MAX_RULES));
        }
        let mut classes = [0u8; 256];
        let mut nclasses = 1usize;
        for sig in signatures.iter().flat_map(|s| s.as_ref()) {
            for &b in sig {
                if classes[b as usize] == 0 {
                    if nclasses == 256 {
                        return Err("too many distinct signature bytes".to_string());
                    }
                    classes[b as usize] = nclasses as u8;
                    nclasses += 1;
                }
            }
        }
        const NONE: u16 = u16::MAX;
        // the trie: goto[state * nclasses + class], NONE where absent
        let mut goto: Vec<u16> = vec![NONE; nclasses];
        let mut out: Vec<u64> = vec![0];
        for (rule, sigs) in signatures.iter().enumerate() {
            for sig in sigs.as_ref() {
                let mut s = 0usize;
                for &b in sig {
                    let c = classes[b as usize] as usize;
                    let next = goto[s * nclasses + c];
                    s = if next == NONE {
                        let id = out.len();
                        if id >= MAX_STATES {
                            return Err("signatures too long in total".to_string());
                        }
                        goto[s * nclasses + c] = id as u16;
                        goto.extend(std::iter::repeat(NONE).take(nclasses));
                        out.push(0);
                        id
                    } else {
                        next as usize
                    };
                }
                out[s] |= 1u64 << rule;
            }
        }
        // breadth-first: failure links, then every missing edge follows them (full DFA)
        let n = out.len();
        let mut delta = vec![0u16; n * nclasses];
        let mut fail = vec![0usize; n];
        let mut queue = std::collections::VecDeque::new();
        for c in 0..nclasses {
            let next = goto[c];
            if next != NONE {
                delta[c] = next;
                queue.push_back(next as usize);
            }
        }
        while let Some(s) = queue.pop_front() {
            out[s] |= out[fail[s]];
            for c in 0..nclasses {
                let next = goto[s * nclasses + c];
                if next == NONE {
                    delta[s * nclasses + c] = delta[fail[s] * nclasses + c];
                } else {
                    fail[next as usize] = delta[fail[s] * nclasses + c] as usize;
                    delta[s * nclasses + c] = next;
                    queue.push_back(next as usize);
                }
            }
        }
        Ok(Matcher { classes, nclasses, delta, out })
    }

    /// The set of rules (bits) with a signature somewhere in `text`.
    pub fn scan(&self, text: &[u8]) -> u64 {
        let mut s = 0usize;
        let mut found = 0u64;
        for &b in text {
            s = self.delta[s * self.nclasses + self.classes[b as usize] as usize] as usize;
            found |= self.out[s];
        }
        found
    }

    /// `scan(text)` for a `text` that `normalise` would leave as it is, checked in the
    /// same pass (`rules::breaks_canonical`): the rules found, and whether `text` holds
    /// both an `on` and a `=` (which an event handler attribute needs); None, without a
    /// result, as soon as it turns out not to be canonical.
    pub fn scan_canonical(&self, text: &[u8], form_encoded: bool) -> Option<(u64, bool)> {
        let mut s = 0usize;
        let mut found = 0u64;
        let mut prev = 0u8;
        let mut eq = false;
        let mut on = false;
        for &b in text {
            // one table look for the usual byte, which asks nothing more
            let special = crate::rules::SPECIAL[b as usize];
            if special == crate::rules::EQUALS {
                eq = true;
            } else if special != 0 && crate::rules::breaks_canonical(b, prev, form_encoded) {
                return None;
            }
            on |= b == b'n' && prev == b'o';
            s = self.delta[s * self.nclasses + self.classes[b as usize] as usize] as usize;
            found |= self.out[s];
            prev = b;
        }
        Some((found, eq && on))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rules: &[&[&str]]) -> Matcher {
        let sigs: Vec<Vec<Vec<u8>>> = rules.iter().map(|r| r.iter().map(|s| s.as_bytes().to_vec()).collect()).collect();
        Matcher::build(&sigs).unwrap()
    }

    #[test]
    fn finds_every_rule_including_overlaps() {
        let a = m(&[&["he", "she"], &["his", "hers"], &["xyz"]]);
        assert_eq!(a.scan(b"ushers"), 0b011);
        assert_eq!(a.scan(b"ahishe"), 0b011);
        assert_eq!(a.scan(b"nothing"), 0);
        assert_eq!(a.scan(b"xxyz"), 0b100);
        assert_eq!(a.scan(b""), 0);
    }

    #[test]
    fn suffix_matches_through_failure_links() {
        let a = m(&[&["abcd"], &["bc"]]);
        assert_eq!(a.scan(b"abce"), 0b10);
        assert_eq!(a.scan(b"xabcd"), 0b11);
    }
}
