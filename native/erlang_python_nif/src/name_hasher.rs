//! A cheap hasher for the name caches: the worker's call names keyed by an
//! atom's term word (`ops::cache`), and the isolated worker's keyed by
//! their external-format bytes (`worker/serve.rs`, which mounts this file).
//!
//! Both caches are bounded and filled by the VM's own requests, so
//! SipHash's resistance to chosen keys buys nothing; it cost more than the
//! rest of a look-up (callgrind, for the isolated worker; two `enif_hash`
//! calls plus SipHash per call, for the NIF).

use std::hash::Hasher;

/// FNV-1a over bytes; a single word (an atom's term word, a slice's length)
/// is one multiply by an odd constant, which spreads an atom-table index
/// over the high bits. `finish` folds the high bits down, since the table
/// picks a bucket by the low bits, which a term's constant tag bits would
/// otherwise decide.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

/// FNV-1a's offset basis, the state before the first byte.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;
/// 2^64 / golden ratio, odd.
const WORD_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { FNV_OFFSET } else { self.0 };
        for &byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
        self.0 = hash;
    }

    fn write_usize(&mut self, word: usize) {
        self.0 = (self.0 ^ word as u64).wrapping_mul(WORD_MULTIPLIER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};

    fn hash_of<T: std::hash::Hash>(value: T) -> u64 {
        BuildHasherDefault::<NameHasher>::default().hash_one(value)
    }

    #[test]
    fn atom_words_spread_over_the_low_bits() {
        // Atom term words differ above their constant tag bits (0b001011 on
        // 64-bit OTP): 1024 of them must land in many of 1024 buckets.
        let buckets: HashSet<u64> = (0..1024usize)
            .map(|index| hash_of((index << 6) | 0b00_1011) & 1023)
            .collect();
        assert!(buckets.len() > 500, "{} buckets used", buckets.len());
    }

    #[test]
    fn byte_keys_differ_by_content_and_length() {
        let names = [&b"a"[..], b"b", b"ab", b"ba", b"", b"\0"];
        let hashes: HashSet<u64> = names.iter().map(|name| hash_of(name.to_vec())).collect();
        assert_eq!(hashes.len(), names.len());
    }
}
