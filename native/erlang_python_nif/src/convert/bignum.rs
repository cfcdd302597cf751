//! Integers beyond 64 bits travel through the external term format: its
//! bignum encoding is the little-endian magnitude Python's `int.to_bytes`
//! and `int.from_bytes` read and write.

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

#[cfg(test)]
mod tests {
    use super::*;

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
