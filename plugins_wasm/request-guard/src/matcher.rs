//! All rules' signatures in one Aho-Corasick automaton, built once in `on_configure`:
//! a request's text is scanned once, whatever the number of signatures (a substring
//! search per signature cost ~100 µs per request).
//!
//! The alphabet is compressed to the bytes that occur in signatures (everything else is
//! class 0), and the automaton is a full DFA, so the scan is one table lookup per byte.
//! A transition holds the next state's row in the table (state * classes: no multiply
//! per byte) and a flag when a signature ends in that state. Each such state carries the
//! bit set of rules whose signature ends there (through failure links too), so the result
//! is the set of matching rules, looked up only on the rare flagged transition. Marks are
//! strings found the same way that are not rules (the `on` and `=` an event handler
//! attribute needs: a second pass to look for them cost as much as the scan).

/// Rules are bits of a u64.
pub const MAX_RULES: usize = 64;
/// States are u16 indices.
pub const MAX_STATES: usize = 65_000;

/// Set in a transition into a state where some signature or mark ends.
const HIT: u32 = 1 << 31;
/// Marks are bits of a u8.
pub const MAX_MARKS: usize = 8;

pub struct Matcher {
    classes: [u8; 256],
    nclasses: usize,
    /// `trans[row + class]`: the next state's row, `| HIT` where a signature ends
    trans: Vec<u32>,
    out: Vec<u64>,
    marks: Vec<u8>,
}

impl Matcher {
    /// `signatures[i]` are rule `i`'s (already normalised) signatures; `marks[j]` is
    /// reported as bit `j` of the scan's marks.
    pub fn build<S: AsRef<[Vec<u8>]>>(signatures: &[S], marks: &[&[u8]]) -> Result<Matcher, String> {
        if signatures.len() > MAX_RULES {
            return Err(format!("at most {} rules", MAX_RULES));
        }
        assert!(marks.len() <= MAX_MARKS);
        let mut classes = [0u8; 256];
        let mut nclasses = 1usize;
        let all = signatures.iter().flat_map(|s| s.as_ref().iter().map(|v| v.as_slice()));
        for sig in all.chain(marks.iter().copied()) {
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
        let mut mark: Vec<u8> = vec![0];
        // (pattern, the rule bit it sets, the mark bit it sets)
        let rules = signatures.iter().enumerate().flat_map(|(rule, sigs)| {
            sigs.as_ref().iter().map(move |sig| (sig.as_slice(), 1u64 << rule, 0u8))
        });
        let marked = marks.iter().enumerate().map(|(j, m)| (*m, 0u64, 1u8 << j));
        for (pattern, rule_bit, mark_bit) in rules.chain(marked) {
            let mut s = 0usize;
            for &b in pattern {
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
                    mark.push(0);
                    id
                } else {
                    next as usize
                };
            }
            out[s] |= rule_bit;
            mark[s] |= mark_bit;
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
            mark[s] |= mark[fail[s]];
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
        let trans = delta
            .iter()
            .map(|&next| {
                let row = (next as usize * nclasses) as u32;
                if out[next as usize] != 0 || mark[next as usize] != 0 {
                    row | HIT
                } else {
                    row
                }
            })
            .collect();
        Ok(Matcher { classes, nclasses, trans, out, marks: mark })
    }

    /// The rules (bits) with a signature somewhere in `text`, and the marks found.
    pub fn scan(&self, text: &[u8]) -> (u64, u8) {
        let mut row = 0usize;
        let mut found = (0u64, 0u8);
        for &b in text {
            row = self.step(row, b, &mut found);
        }
        found
    }

    /// `scan(text)` for a `text` that `normalise` would leave as it is, checked in the
    /// same pass (`rules::breaks_canonical`): None, without a result, as soon as it
    /// turns out not to be canonical. The loop keeps as little as it can in registers
    /// (the byte before is read back only for a special byte): a wasm compiler spills
    /// what does not fit, and this loop runs for every byte of every request.
    pub fn scan_canonical(&self, text: &[u8], form_encoded: bool) -> Option<(u64, u8)> {
        let mut row = 0usize;
        let mut found = (0u64, 0u8);
        for (i, &b) in text.iter().enumerate() {
            if crate::rules::SPECIAL[b as usize] != 0 {
                let prev = if i == 0 { 0 } else { text[i - 1] };
                if crate::rules::breaks_canonical(b, prev, form_encoded) {
                    return None;
                }
            }
            row = self.step(row, b, &mut found);
        }
        Some(found)
    }

    /// One byte's step from `row`: the next row; what ends there is added to `found`.
    #[inline(always)]
    fn step(&self, row: usize, b: u8, found: &mut (u64, u8)) -> usize {
        let t = self.trans[row + self.classes[b as usize] as usize];
        let next = (t & !HIT) as usize;
        if t & HIT != 0 {
            self.hit(next / self.nclasses, found);
        }
        next
    }

    #[cold]
    fn hit(&self, state: usize, found: &mut (u64, u8)) {
        found.0 |= self.out[state];
        found.1 |= self.marks[state];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rules: &[&[&str]]) -> Matcher {
        let sigs: Vec<Vec<Vec<u8>>> = rules.iter().map(|r| r.iter().map(|s| s.as_bytes().to_vec()).collect()).collect();
        Matcher::build(&sigs, &[b"on", b"="]).unwrap()
    }

    #[test]
    fn finds_every_rule_including_overlaps() {
        let a = m(&[&["he", "she"], &["his", "hers"], &["xyz"]]);
        assert_eq!(a.scan(b"ushers"), (0b011, 0));
        assert_eq!(a.scan(b"ahishe"), (0b011, 0));
        assert_eq!(a.scan(b"nothing"), (0, 0));
        assert_eq!(a.scan(b"onion"), (0, 0b01));
        assert_eq!(a.scan(b"xxyz"), (0b100, 0));
        assert_eq!(a.scan(b""), (0, 0));
        assert_eq!(a.scan(b"she=on"), (0b001, 0b11));
    }

    #[test]
    fn suffix_matches_through_failure_links() {
        let a = m(&[&["abcd"], &["bc"]]);
        assert_eq!(a.scan(b"abce"), (0b10, 0));
        assert_eq!(a.scan(b"xabcd"), (0b11, 0));
    }
}
