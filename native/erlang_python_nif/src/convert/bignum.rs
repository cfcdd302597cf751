//! Integers beyond 64 bits travel through the external term format: its
//! bignum encoding is the little-endian magnitude Python's `int.to_bytes`
//! and `int.from_bytes` read and write. A `Decimal`'s coefficient is read
//! from and written as decimal digits, converted here.

/// Splits an external-term-format bignum into (negative, little-endian magnitude).
pub(super) fn parse_bignum_etf(etf: &[u8]) -> Option<(bool, &[u8])> {
    match etf {
        [131, 110, n, sign, rest @ ..] if rest.len() == *n as usize => Some((*sign == 1, rest)),
        [131, 111, a, b, c, d, sign, rest @ ..]
            if rest.len() == u32::from_be_bytes([*a, *b, *c, *d]) as usize =>
        {
            Some((*sign == 1, rest))
        }
        _ => None,
    }
}

/// Builds the external term format of an integer from its magnitude.
pub(super) fn bignum_etf(negative: bool, magnitude_le: &[u8]) -> Option<Vec<u8>> {
    let mut etf = Vec::with_capacity(magnitude_le.len() + 7);
    etf.push(131);
    if magnitude_le.len() <= u8::MAX as usize {
        etf.extend_from_slice(&[110, magnitude_le.len() as u8]);
    } else {
        let len = u32::try_from(magnitude_le.len()).ok()?;
        etf.push(111);
        etf.extend_from_slice(&len.to_be_bytes());
    }
    etf.push(u8::from(negative));
    etf.extend_from_slice(magnitude_le);
    Some(etf)
}

/// Decimal digits per step of the conversions below: 10^19 is the largest
/// power of ten a `u64` holds.
const STEP_DIGITS: usize = 19;
const STEP: u64 = 10_000_000_000_000_000_000;

/// The little-endian magnitude (no high zero bytes; none for zero) of the
/// number ASCII decimal `digits` write, for a `Decimal`'s coefficient of
/// any length. Python's `int(text)` stops at `sys.get_int_max_str_digits()`
/// and a `Decimal` has no such limit; like `int(text)`, this takes time
/// quadratic in the length (5,000 digits: about 70,000 multiplications).
pub(super) fn magnitude_of_digits(digits: &[u8]) -> Vec<u8> {
    debug_assert!(digits.iter().all(u8::is_ascii_digit));
    let mut limbs: Vec<u64> = Vec::with_capacity(digits.len() / STEP_DIGITS + 1);
    let lead = digits.len() % STEP_DIGITS;
    let steps = std::iter::once(&digits[..lead])
        .filter(|step| !step.is_empty())
        .chain(digits[lead..].chunks(STEP_DIGITS));
    for step in steps {
        // Every step after the first has STEP_DIGITS digits; the first
        // finds no limb to scale.
        let mut carry = step
            .iter()
            .fold(0_u64, |value, digit| value * 10 + u64::from(digit - b'0'));
        for limb in &mut limbs {
            let product = u128::from(*limb) * u128::from(STEP) + u128::from(carry);
            *limb = product as u64;
            carry = (product >> 64) as u64;
        }
        if carry != 0 {
            limbs.push(carry);
        }
    }
    let mut bytes: Vec<u8> = limbs.iter().flat_map(|limb| limb.to_le_bytes()).collect();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// The decimal digits of a little-endian magnitude (`"0"` for zero), as
/// [`magnitude_of_digits`] reads them, in quadratic time too.
pub(super) fn digits_of_magnitude(magnitude_le: &[u8]) -> String {
    let mut limbs: Vec<u64> = magnitude_le
        .chunks(8)
        .map(|bytes| {
            let mut limb = [0; 8];
            limb[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(limb)
        })
        .collect();
    // Base 10^19 digits, the least significant first.
    let mut steps = Vec::with_capacity(magnitude_le.len() / 8 + 1);
    loop {
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
        if limbs.is_empty() {
            break;
        }
        let mut remainder = 0_u64;
        for limb in limbs.iter_mut().rev() {
            let value = (u128::from(remainder) << 64) | u128::from(*limb);
            *limb = (value / u128::from(STEP)) as u64;
            remainder = (value % u128::from(STEP)) as u64;
        }
        steps.push(remainder);
    }
    let Some((first, rest)) = steps.split_last() else {
        return "0".to_owned();
    };
    let mut text = String::with_capacity(steps.len() * STEP_DIGITS);
    text.push_str(&first.to_string());
    for step in rest.iter().rev() {
        text.push_str(&format!("{step:019}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn magnitude_of_u128(value: u128) -> Vec<u8> {
        let mut bytes = value.to_le_bytes().to_vec();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        bytes
    }

    #[test]
    fn decimal_digits_and_magnitudes_agree_with_u128() {
        let mut value: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834;
        let mut cases = vec![
            0,
            1,
            9,
            10,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            u128::MAX,
        ];
        cases.extend((0..=38).map(|power| 10_u128.pow(power)));
        cases.extend((1..=38).map(|power| 10_u128.pow(power) - 1));
        for _ in 0..2000 {
            // xorshift: a spread of magnitudes, shifted to every length
            value ^= value << 13;
            value ^= value >> 7;
            value ^= value << 17;
            cases.push(value >> (value % 128));
        }
        for case in cases {
            let text = case.to_string();
            assert_eq!(
                magnitude_of_digits(text.as_bytes()),
                magnitude_of_u128(case),
                "{text}"
            );
            assert_eq!(digits_of_magnitude(&magnitude_of_u128(case)), text);
        }
    }

    #[test]
    fn leading_zeros_and_long_numbers_round_trip() {
        assert_eq!(
            magnitude_of_digits(b"000000000000000000000000000007"),
            vec![7]
        );
        assert_eq!(digits_of_magnitude(&[7, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "7");
        assert_eq!(digits_of_magnitude(&[]), "0");
        // 10^4999 + 987654321: 5,000 digits, far past a u128.
        let text = format!("1{}987654321", "0".repeat(4990));
        let magnitude = magnitude_of_digits(text.as_bytes());
        assert_eq!(magnitude.len(), 2076); // ceil(4999 * log2(10) / 8)
        assert_eq!(digits_of_magnitude(&magnitude), text);
        // 2^8000 - 1: every byte 0xff.
        let ones = vec![0xff; 1000];
        assert_eq!(
            magnitude_of_digits(digits_of_magnitude(&ones).as_bytes()),
            ones
        );
    }

    #[test]
    fn bignum_etf_round_trips_small_and_large_forms() {
        let small = vec![1u8; 9];
        let etf = bignum_etf(true, &small).unwrap();
        assert_eq!(&etf[..4], &[131, 110, 9, 1]);
        assert_eq!(parse_bignum_etf(&etf), Some((true, small.as_slice())));

        let large = vec![7u8; 300];
        let etf = bignum_etf(false, &large).unwrap();
        assert_eq!(&etf[..7], &[131, 111, 0, 0, 1, 44, 0]);
        assert_eq!(parse_bignum_etf(&etf), Some((false, large.as_slice())));
    }

    #[test]
    fn truncated_etf_is_rejected() {
        assert_eq!(parse_bignum_etf(&[131, 110, 5, 0, 1, 2]), None);
        assert_eq!(parse_bignum_etf(&[131, 97, 5]), None);
    }
}
