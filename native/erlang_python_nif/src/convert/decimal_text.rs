//! A `decimal.Decimal`'s parts read from its text, and its text written
//! from them: `str(Decimal)` (C in CPython's `_decimal`) gives the exact
//! value as the General Decimal Arithmetic spec's to-scientific-string,
//! and `Decimal(text)` reads a text exactly whatever the context's
//! precision. The Python helper that went through `as_tuple()` and a tuple
//! of single digits each way cost 3 us a value to Python and 8 us back on
//! the development VM.

/// A finite decimal's coefficient, its digits as written.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Coefficient {
    /// At most 19 digits: fits a `u64`.
    Small(u64),
    /// More digits (leading zeros included), for a Python int to read.
    Large(String),
}

/// What a `Decimal` is, as the Elixir `decimal` package splits it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DecimalParts {
    /// `coefficient * 10 ** exponent`, negative or not (`-0` included).
    Finite {
        negative: bool,
        coefficient: Coefficient,
        exponent: i64,
    },
    Infinity {
        negative: bool,
    },
    /// A quiet or signalling NaN, whatever its payload.
    NaN {
        negative: bool,
    },
}

/// The parts of a to-scientific-string text (`-12.30`, `1.5E+7`, `0E-9`,
/// `-Infinity`, `sNaN12`); the exponent letter may be lower case (a context
/// with `capitals=0`). `None` for any other text.
pub(super) fn parse(text: &str) -> Option<DecimalParts> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if rest == "Infinity" {
        return Some(DecimalParts::Infinity { negative });
    }
    if let Some(payload) = rest
        .strip_prefix("NaN")
        .or_else(|| rest.strip_prefix("sNaN"))
    {
        return payload
            .bytes()
            .all(|byte| byte.is_ascii_digit())
            .then_some(DecimalParts::NaN { negative });
    }
    let (mantissa, power) = match rest.find(['E', 'e']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((_, "")) => return None,
        Some((whole, fraction)) => (whole, fraction),
        None => (mantissa, ""),
    };
    let digits = whole.len() + fraction.len();
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let coefficient = if digits <= 19 {
        let value = whole
            .bytes()
            .chain(fraction.bytes())
            .fold(0_u64, |value, digit| value * 10 + u64::from(digit - b'0'));
        Coefficient::Small(value)
    } else {
        Coefficient::Large([whole, fraction].concat())
    };
    Some(DecimalParts::Finite {
        negative,
        coefficient,
        exponent: power.checked_sub(i64::try_from(fraction.len()).ok()?)?,
    })
}

/// The text `Decimal(text)` reads as `coefficient * 10 ** exponent`, with
/// its sign: `-1234E-2`.
pub(super) fn finite_text(negative: bool, coefficient: &str, exponent: i64) -> String {
    let sign = if negative { "-" } else { "" };
    format!("{sign}{coefficient}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::{parse, Coefficient, DecimalParts};

    fn finite(negative: bool, coefficient: u64, exponent: i64) -> Option<DecimalParts> {
        Some(DecimalParts::Finite {
            negative,
            coefficient: Coefficient::Small(coefficient),
            exponent,
        })
    }

    #[test]
    fn reads_finite_texts_exactly() {
        assert_eq!(parse("-12.30"), finite(true, 1230, -2));
        assert_eq!(parse("1.5E+7"), finite(false, 15, 6));
        assert_eq!(parse("1.5e+7"), finite(false, 15, 6));
        assert_eq!(parse("0E-9"), finite(false, 0, -9));
        assert_eq!(parse("-0"), finite(true, 0, 0));
        assert_eq!(parse("0.000123"), finite(false, 123, -6));
        assert_eq!(
            parse("9999999999999999999"),
            finite(false, 9_999_999_999_999_999_999, 0)
        );
        assert_eq!(
            parse("1.2345678901234567890123E-5"),
            Some(DecimalParts::Finite {
                negative: false,
                coefficient: Coefficient::Large("12345678901234567890123".into()),
                exponent: -27,
            })
        );
    }

    #[test]
    fn reads_the_special_values() {
        assert_eq!(
            parse("Infinity"),
            Some(DecimalParts::Infinity { negative: false })
        );
        assert_eq!(
            parse("-Infinity"),
            Some(DecimalParts::Infinity { negative: true })
        );
        assert_eq!(parse("NaN"), Some(DecimalParts::NaN { negative: false }));
        assert_eq!(parse("-sNaN42"), Some(DecimalParts::NaN { negative: true }));
    }

    #[test]
    fn refuses_other_texts() {
        for text in [
            "",
            "-",
            ".5",
            "1.",
            "1..2",
            "1E",
            "1E+",
            "12a",
            "inf",
            "NaNx",
            "+1",
            "1E99999999999999999999",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
