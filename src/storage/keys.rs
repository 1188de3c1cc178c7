//! Key codecs: how ids and numbers become RocksDB keys whose byte order is the order we scan in.
//!
//! Integers are big-endian so that byte order is numeric order. Variable-length parts end with
//! `0xff`, a byte that never occurs in UTF-8, so that `alice` is not a prefix of `alice2`'s key
//! and a scan over one owner's prefix never spills into another's.

/// Ends a variable-length part of a key.
pub const SEP: u8 = 0xff;

/// Builds a key from parts, in order.
#[derive(Default, Debug, Clone)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Self {
        Key(Vec::with_capacity(64))
    }

    /// A string part, terminated by [`SEP`].
    pub fn str(mut self, part: &str) -> Self {
        self.0.extend_from_slice(part.as_bytes());
        self.0.push(SEP);
        self
    }

    /// A fixed-width big-endian integer part.
    pub fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// Raw bytes with no terminator (for the last part, or fixed-width hashes).
    pub fn bytes(mut self, part: &[u8]) -> Self {
        self.0.extend_from_slice(part);
        self
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads parts back out of a key built with [`Key`].
pub struct KeyReader<'a> {
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    pub fn new(key: &'a [u8]) -> Self {
        KeyReader { rest: key }
    }

    /// The next [`SEP`]-terminated string part; `None` if the key is malformed.
    pub fn str(&mut self) -> Option<&'a str> {
        let end = self.rest.iter().position(|&b| b == SEP)?;
        let (part, rest) = self.rest.split_at(end);
        self.rest = &rest[1..];
        std::str::from_utf8(part).ok()
    }

    /// The next big-endian `u64`; `None` if fewer than 8 bytes remain.
    pub fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(u64::from_be_bytes(*head))
    }

    /// Whatever is left.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_integers_sort_numerically() {
        let numbers = [0u64, 1, 255, 256, 65_535, 1 << 32, u64::MAX - 1, u64::MAX];
        let keys: Vec<Vec<u8>> = numbers
            .iter()
            .map(|&n| Key::new().u64(n).into_vec())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn separator_keeps_prefixes_apart() {
        let alice = Key::new().str("@alice:x").into_vec();
        let alice2 = Key::new().str("@alice2:x").u64(1).into_vec();
        assert!(!alice2.starts_with(&alice));
        // Everything under one owner sorts together, before a longer owner name.
        let a1 = Key::new().str("@alice:x").u64(7).into_vec();
        assert!(a1.starts_with(&alice));
        assert!(a1 < alice2 || !alice2.starts_with(&alice));
    }

    #[test]
    fn parts_round_trip() {
        let key = Key::new()
            .str("@bob:example.org")
            .u64(42)
            .str("DEVICE")
            .bytes(b"tail")
            .into_vec();
        let mut reader = KeyReader::new(&key);
        assert_eq!(reader.str(), Some("@bob:example.org"));
        assert_eq!(reader.u64(), Some(42));
        assert_eq!(reader.str(), Some("DEVICE"));
        assert_eq!(reader.rest(), b"tail");
    }

    #[test]
    fn malformed_keys_read_as_none() {
        let mut reader = KeyReader::new(b"no-separator");
        assert_eq!(reader.str(), None);
        let mut reader = KeyReader::new(&[1, 2, 3]);
        assert_eq!(reader.u64(), None);
    }
}
