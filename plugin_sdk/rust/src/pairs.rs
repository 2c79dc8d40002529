//! The header-map wire format: u32 count, then (key_len, value_len) per pair, then each
//! key and value followed by a NUL. All integers little-endian.

/// Encodes `pairs` in the wire format the host expects.
pub fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.as_ref().len() + v.as_ref().len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

#[inline]
fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Decodes the wire format; `None` when the bytes are truncated or inconsistent (the host
/// is trusted, but a malformed map must not become an out-of-bounds slice panic).
pub fn deserialize(buf: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    Some(split(buf)?.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect())
}

/// Like `deserialize`, but the keys and values borrow from `buf`: one allocation for the
/// whole map instead of two per pair, for plugins that only read the headers.
pub fn split(buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if buf.len() <= 1 {
        // an empty map may come as zero bytes or a single NUL
        return Some(Vec::new());
    }
    let count = read_u32(buf, 0)?;
    // every pair needs at least 10 bytes: two lengths and two NULs
    if count > buf.len() / 10 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    pairs.extend(iter(buf));
    if pairs.len() == count {
        Some(pairs)
    } else {
        None
    }
}

/// The pairs of `buf` in order, borrowed and not collected: no allocation at all, for a
/// plugin that reads the map once or twice. A truncated or inconsistent map ends the
/// iteration where it goes wrong (`split` refuses it whole).
pub fn iter(buf: &[u8]) -> Pairs<'_> {
    let count = if buf.len() <= 1 {
        0
    } else {
        read_u32(buf, 0).filter(|&c| c <= buf.len() / 10).unwrap_or(0)
    };
    Pairs { buf, count, i: 0, data: 4 + count * 8 }
}

/// See `iter`.
pub struct Pairs<'a> {
    buf: &'a [u8],
    count: usize,
    i: usize,
    data: usize,
}

impl<'a> Pairs<'a> {
    #[inline]
    fn pair(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let buf = self.buf;
        let kl = read_u32(buf, 4 + self.i * 8)?;
        let vl = read_u32(buf, 8 + self.i * 8)?;
        let key = buf.get(self.data..self.data.checked_add(kl)?)?;
        let at = self.data + kl + 1;
        let value = buf.get(at..at.checked_add(vl)?)?;
        self.data = at + vl + 1;
        Some((key, value))
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    // inlined into the plugin's loop: a call costs about as much as the pair itself
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.i >= self.count {
            return None;
        }
        let pair = self.pair();
        self.i = if pair.is_some() { self.i + 1 } else { self.count };
        pair
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_matches_reference_bytes() {
        let bytes = serialize(&[("a", "1"), ("b", "22")]);
        assert_eq!(bytes.len(), 29);
        assert_eq!(&bytes[..4], &[2, 0, 0, 0]);
        let back = deserialize(&bytes).unwrap();
        assert_eq!(back[1], (b"b".to_vec(), b"22".to_vec()));
    }

    #[test]
    fn iter_borrows_the_pairs_and_stops_where_the_map_goes_wrong() {
        let bytes = serialize(&[("a", "1"), ("bb", "22"), ("c", "")]);
        let all: Vec<_> = iter(&bytes).collect();
        assert_eq!(all, split(&bytes).unwrap());
        assert_eq!(all[1], (&b"bb"[..], &b"22"[..]));
        assert_eq!(iter(&bytes[..bytes.len() - 3]).count(), 2);
        assert_eq!(iter(&[255, 255, 255, 255, 0, 0]).count(), 0);
        assert_eq!(iter(&[0]).count(), 0);
        assert_eq!(iter(&[]).count(), 0);
    }

    #[test]
    fn truncated_is_none() {
        let bytes = serialize(&[("abc", "def")]);
        assert!(deserialize(&bytes[..bytes.len() - 3]).is_none());
        assert!(deserialize(&[255, 255, 255, 255, 0, 0]).is_none());
        assert_eq!(deserialize(&[0]).unwrap().len(), 0);
        assert!(split(&bytes[..bytes.len() - 3]).is_none());
    }

    #[test]
    fn split_borrows_the_same_pairs() {
        let bytes = serialize(&[(":path", "/a?b"), ("x", "")]);
        let pairs = split(&bytes).unwrap();
        assert_eq!(pairs, vec![(&b":path"[..], &b"/a?b"[..]), (&b"x"[..], &b""[..])]);
    }
}
