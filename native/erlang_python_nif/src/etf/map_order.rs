//! The order a large map's keys take inside the VM, predicted from their
//! bytes, so a large dict can be written in that order.
//!
//! A map of more than 32 keys is a hash trie (HAMT). Decoding one
//! (`binary_to_term`) hashes every key, sorts the pairs by hash and builds
//! the trie from the sorted array. When the pairs already come in that
//! order, the sort meets sorted input and the trie is built from memory
//! laid out in the order it is read: a 100,000-key map of str keys decoded
//! 26-30% faster in paired runs on OTP 25 (bench/data_map_order.exs), and
//! the same bytes decode to the same map in any order.
//!
//! The hash is the VM's internal one (`make_internal_hash(key, 0)`: Bob
//! Jenkins' public-domain lookup2 mix over the key's bytes, or over a small
//! integer's tagged word), and the trie takes its nibbles lowest first, so
//! the order is that of the hash with its nibbles reversed ([`binary`] and
//! [`small_int`] give that place), highest place first: the order
//! `maps:to_list/1` and `term_to_binary/1` give. Nothing is
//! assumed about the running VM: the caller checks [`binary`] and
//! [`small_int`] against the VM's own `enif_hash` and against a map's real
//! order before using them (`convert::map_order`). A wrong prediction would
//! only cost speed, never change a result.

/// The golden ratio, the hash's arbitrary starting constant.
const HCONST: u32 = 0x9e37_79b9;
/// `HCONST * 13`: mixed in for binaries.
const HCONST_13: u32 = 0x08d1_2e65;
/// The internal hash's own salt (a prime), xor the caller's salt of 0.
const INTERNAL_SALT: u32 = 3_432_918_353;

/// Smallest and largest integers the VM keeps in one tagged word (64-bit
/// VM: 60 bits); larger ones are bignums, hashed otherwise.
pub(crate) const SMALL_MIN: i64 = -(1 << 59);
pub(crate) const SMALL_MAX: i64 = (1 << 59) - 1;

/// Where a binary key (a str's UTF-8 or bytes) falls in a large map's order.
pub(crate) fn binary(bytes: &[u8]) -> u32 {
    place(binary_hash(bytes))
}

/// Where an integer key falls; `None` beyond [`SMALL_MIN`]..=[`SMALL_MAX`].
pub(crate) fn small_int(value: i64) -> Option<u32> {
    small_int_hash(value).map(place)
}

/// The internal hash of a binary.
pub(crate) fn binary_hash(bytes: &[u8]) -> u32 {
    let initial = HCONST_13.wrapping_add(INTERNAL_SALT);
    if bytes.is_empty() {
        initial
    } else {
        block_hash(bytes, initial)
    }
}

/// The internal hash of an integer of one word.
pub(crate) fn small_int_hash(value: i64) -> Option<u32> {
    if !(SMALL_MIN..=SMALL_MAX).contains(&value) {
        return None;
    }
    // The tagged word: the value above the 4-bit tag of a small integer.
    let word = ((value as u64) << 4) | 0xF;
    let (mut a, mut b, mut c) = (
        HCONST.wrapping_add(word as u32),
        HCONST.wrapping_add((word >> 32) as u32),
        INTERNAL_SALT,
    );
    mix(&mut a, &mut b, &mut c);
    Some(c)
}

/// The trie's order: the hash read a nibble at a time, lowest first.
fn place(hash: u32) -> u32 {
    nibbles_reversed(hash)
}

fn nibbles_reversed(hash: u32) -> u32 {
    let bytes_reversed = hash.swap_bytes();
    ((bytes_reversed & 0x0f0f_0f0f) << 4) | ((bytes_reversed & 0xf0f0_f0f0) >> 4)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    macro_rules! step {
        ($x:ident, $y:ident, $z:ident, $shift:expr, left) => {
            *$x = $x.wrapping_sub(*$y).wrapping_sub(*$z) ^ (*$z << $shift);
        };
        ($x:ident, $y:ident, $z:ident, $shift:expr, right) => {
            *$x = $x.wrapping_sub(*$y).wrapping_sub(*$z) ^ (*$z >> $shift);
        };
    }
    step!(a, b, c, 13, right);
    step!(b, c, a, 8, left);
    step!(c, a, b, 13, right);
    step!(a, b, c, 12, right);
    step!(b, c, a, 16, left);
    step!(c, a, b, 5, right);
    step!(a, b, c, 3, right);
    step!(b, c, a, 10, left);
    step!(c, a, b, 15, right);
}

fn block_hash(bytes: &[u8], initial: u32) -> u32 {
    let (mut a, mut b, mut c) = (HCONST, HCONST, initial);
    let word = |chunk: &[u8]| u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    let mut blocks = bytes.chunks_exact(12);
    for block in &mut blocks {
        a = a.wrapping_add(word(&block[0..4]));
        b = b.wrapping_add(word(&block[4..8]));
        c = c.wrapping_add(word(&block[8..12]));
        mix(&mut a, &mut b, &mut c);
    }
    // The last 0 to 11 bytes; the lowest byte of `c` holds the length.
    c = c.wrapping_add(bytes.len() as u32);
    for (index, &byte) in blocks.remainder().iter().enumerate() {
        let byte = byte as u32;
        match index {
            0..=3 => a = a.wrapping_add(byte << (8 * index)),
            4..=7 => b = b.wrapping_add(byte << (8 * (index - 4))),
            _ => c = c.wrapping_add(byte << (8 * (index - 7))),
        }
    }
    mix(&mut a, &mut b, &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_reverse() {
        assert_eq!(nibbles_reversed(0x1234_5678), 0x8765_4321);
        assert_eq!(nibbles_reversed(0x0000_000f), 0xf000_0000);
    }

    #[test]
    fn integers_beyond_a_word_have_no_prediction() {
        assert!(small_int(SMALL_MAX).is_some());
        assert!(small_int(SMALL_MIN).is_some());
        assert_eq!(small_int(SMALL_MAX + 1), None);
        assert_eq!(small_int(SMALL_MIN - 1), None);
    }

    #[test]
    fn every_tail_length_reaches_the_hash() {
        // Each of the 0..=11 trailing bytes (and a full block) changes it.
        let bytes: Vec<u8> = (1..=24).collect();
        let hashes: std::collections::HashSet<u32> =
            (0..=24).map(|len| binary(&bytes[..len])).collect();
        assert_eq!(hashes.len(), 25);
    }
}
