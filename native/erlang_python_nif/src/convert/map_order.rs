//! Whether large results may be written with their dicts' keys in the
//! order the running VM keeps them in a map (`etf::map_order`), which
//! makes `binary_to_term` build the map faster.
//!
//! Two things must hold, and a wrong answer would cost only speed:
//! - the VM's internal hash is the one `etf::map_order` computes: checked
//!   once, on the first large result, against `enif_hash` for keys of every
//!   tail length and integers across the range of one word;
//! - its maps order keys by that hash, nibbles lowest first: true of the
//!   OTP releases listed in [`ORDER_KNOWN`], whose map order
//!   `test/map_order_test.exs` compares with `:erlang.term_to_binary/1`'s.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use rustler::{Encoder, NewBinary, OwnedEnv, Term};

use crate::etf::map_order;

/// OTP releases whose maps were seen to take the order `etf::map_order`
/// predicts (by `test/map_order_test.exs`); others keep the dict's order.
/// (OTP 27.3's internal hash is another function: there the check against
/// `enif_hash` fails, as it should, even when 27 is allowed here.)
const ORDER_KNOWN: std::ops::RangeInclusive<u32> = 25..=25;

static OTP_MAJOR: AtomicU32 = AtomicU32::new(0);

/// Declares the running OTP release (from `to_term::set_otp_version`).
pub(crate) fn set_otp_major(major: u32) {
    OTP_MAJOR.store(major, Ordering::Relaxed);
}

/// Whether large dicts are written in the VM's map order.
pub(crate) fn predicted() -> bool {
    static CHECKED: OnceLock<bool> = OnceLock::new();
    ORDER_KNOWN.contains(&OTP_MAJOR.load(Ordering::Relaxed)) && *CHECKED.get_or_init(hash_agrees)
}

/// Whether `etf::map_order`'s hash is the VM's own, on sample keys.
fn hash_agrees() -> bool {
    let mut env = OwnedEnv::new();
    let agrees = env.run(|env| {
        let bytes: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
        let binaries = (0..=bytes.len()).all(|len| {
            let mut binary = NewBinary::new(env, len);
            binary.as_mut_slice().copy_from_slice(&bytes[..len]);
            let term: Term<'_> = binary.into();
            term.hash_internal(0) == u64::from(map_order::binary_hash(&bytes[..len]))
        });
        let edges = [
            0,
            1,
            -1,
            255,
            256,
            -(1 << 27) - 1,
            1 << 27,
            i32::MAX as i64 + 1,
            i32::MIN as i64 - 1,
            map_order::SMALL_MAX,
            map_order::SMALL_MIN,
        ];
        let ints = edges.iter().all(|&value| {
            map_order::small_int_hash(value)
                .is_some_and(|hash| value.encode(env).hash_internal(0) == u64::from(hash))
        });
        binaries && ints
    });
    env.clear();
    agrees
}
