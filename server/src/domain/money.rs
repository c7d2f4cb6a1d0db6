//! Decimal money: parsed from JSON strings or numbers, never through binary
//! floating point arithmetic, and bounded so absurd amounts are refused.

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// The largest amount the server accepts (10^12 in any currency).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

/// Most decimal places accepted in an amount.
pub const MAX_SCALE: u32 = 6;

struct DecimalVisitor;

impl<'de> Visitor<'de> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal number as a string (\"10000.01\") or a JSON number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse_decimal(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        if !v.is_finite() {
            return Err(E::custom("not a finite number"));
        }
        // Only reached by deserializers that hold numbers as f64: Rust prints
        // the shortest text that reads back as the same f64, which is the
        // text written for any amount with up to 15 significant digits.
        parse_decimal(&v.to_string()).map_err(E::custom)
    }

    /// serde_json (with `arbitrary_precision`, which the workspace enables)
    /// hands a JSON number over as a one-entry map holding its exact text,
    /// so `12345678901234567.89` is read digit for digit, never through f64.
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some(JSON_NUMBER_TOKEN) {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        }
        let text: String = map.next_value()?;
        parse_decimal(&text).map_err(de::Error::custom)
    }
}

/// The key serde_json's `arbitrary_precision` uses for a number's text.
const JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses a plain decimal string (`"-12.50"`), refusing exponents and junk.
pub fn parse_decimal(s: &str) -> Result<Decimal, String> {
    let t = s.trim();
    let ok = t.chars().any(|c| c.is_ascii_digit())
        && t.len() <= 40
        && t.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+')));
    if !ok {
        return Err(format!("`{s}` is not a decimal number"));
    }
    // Trailing fractional zeros carry no value; dropping them first lets
    // `from_str_exact` refuse only digits that would really be rounded away.
    let t = if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.')
    } else {
        t
    };
    let t = if t.is_empty() || t == "-" || t == "+" {
        "0"
    } else {
        t
    };
    Decimal::from_str_exact(t)
        .map(|d| d.normalize())
        .map_err(|e| match e {
            rust_decimal::Error::Underflow | rust_decimal::Error::ExceedsMaximumPossibleValue => {
                format!(
                    "`{s}` has more digits than a decimal amount can hold (28 significant digits)"
                )
            }
            _ => format!("`{s}` is not a decimal number"),
        })
}

/// Serde helper: a decimal from a string or a number.
pub fn de_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_any(DecimalVisitor)
}

/// Serde helper: an optional decimal from a string, a number or null.
pub fn de_opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Decimal>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal number or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            de_decimal(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// A decimal's text exactly as its `Display` writes it (`-12.50`, `0.00`),
/// without the formatting machinery (which divides the 96-bit mantissa
/// digit by digit): a settlement hands plugins millions of amounts as text.
pub fn decimal_text(d: &Decimal) -> String {
    // At most 29 digits (2^96 < 10^29) and no more than 28 places.
    let mut digits = [0u8; 32];
    let mut len = 0;
    let mantissa = d.mantissa().unsigned_abs();
    if let Ok(mut n) = u64::try_from(mantissa) {
        while n != 0 {
            digits[len] = b'0' + (n % 10) as u8;
            n /= 10;
            len += 1;
        }
    } else {
        let mut n = mantissa;
        while n != 0 {
            digits[len] = b'0' + (n % 10) as u8;
            n /= 10;
            len += 1;
        }
    }
    let scale = d.scale() as usize;
    while len < scale {
        digits[len] = b'0';
        len += 1;
    }
    let whole = len - scale;
    let mut out = String::with_capacity(len + 3);
    if d.is_sign_negative() {
        out.push('-');
    }
    for i in 0..len {
        if i == whole {
            if i == 0 {
                out.push('0');
            }
            out.push('.');
        }
        out.push(char::from(digits[len - 1 - i]));
    }
    if len == 0 {
        out.push('0');
    }
    out
}

/// Checks an amount is within `[min, 10^12]` with at most `MAX_SCALE` places.
pub fn check_amount(value: Decimal, allow_zero: bool) -> Result<Decimal, String> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err("must not be negative".into());
    }
    if value.is_zero() && !allow_zero {
        return Err("must be greater than zero".into());
    }
    if value > MAX_AMOUNT {
        return Err("must not exceed 1000000000000".into());
    }
    if value.normalize().scale() > MAX_SCALE {
        return Err(format!("must have at most {MAX_SCALE} decimal places"));
    }
    Ok(value.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_is_what_display_writes() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases = vec![
            Decimal::ZERO,
            Decimal::from_parts(0, 0, 0, true, 0),
            Decimal::from_parts(0, 0, 0, true, 3),
            Decimal::from_parts(0, 0, 0, false, 28),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::new(1, 28),
            Decimal::new(-1, 28),
            Decimal::new(-1250, 2),
            Decimal::new(i64::MAX, 0),
            Decimal::new(i64::MIN, 19),
        ];
        for _ in 0..20_000 {
            let (lo, mid, hi) = (next() as u32, next() as u32, next() as u32);
            let scale = (next() % 29) as u32;
            let negative = next().is_multiple_of(2);
            cases.push(Decimal::from_parts(lo, mid, hi, negative, scale));
            // Mostly amounts that fit in 64 bits, as money does.
            cases.push(Decimal::from_parts(lo, mid, 0, negative, scale));
            cases.push(Decimal::from_parts(lo % 100_000, 0, 0, negative, scale % 7));
        }
        for d in cases {
            assert_eq!(decimal_text(&d), d.to_string(), "{:?}", d.serialize());
        }
    }

    #[test]
    fn max_amount_is_ten_to_the_twelfth() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000i64));
    }

    #[test]
    fn floats_read_back_as_written() {
        let d: Decimal = de_decimal(&mut serde_json::Deserializer::from_str("10000.01")).unwrap();
        assert_eq!(d.to_string(), "10000.01");
        let d: Decimal = de_decimal(&mut serde_json::Deserializer::from_str("0.1")).unwrap();
        assert_eq!(d.to_string(), "0.1");
    }

    #[test]
    fn json_numbers_are_read_from_their_text() {
        let d: Decimal = de_decimal(&mut serde_json::Deserializer::from_str(
            "12345678901234567.89",
        ))
        .unwrap();
        assert_eq!(d.to_string(), "12345678901234567.89");
        let v: serde_json::Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(de_decimal(v).unwrap().to_string(), "0.1");
        assert!(de_decimal(&mut serde_json::Deserializer::from_str("1e5")).is_err());
        assert!(de_decimal(&mut serde_json::Deserializer::from_str(
            "1000000000000.0000000000000000001"
        ))
        .is_err());
    }

    #[test]
    fn digits_that_would_be_rounded_are_refused() {
        assert!(parse_decimal("1000000000000.0000000000000000001").is_err());
        assert!(parse_decimal("0.00000000000000000000000000000001").is_err());
        assert_eq!(
            parse_decimal("12.5000000000000000000000000000000")
                .unwrap()
                .to_string(),
            "12.5"
        );
        assert_eq!(parse_decimal("-0.0").unwrap(), Decimal::ZERO);
    }

    #[test]
    fn junk_is_refused() {
        for s in ["", "1e5", "abc", "1.2.3", "--1", " ", "NaN", ".", "-.", "+"] {
            assert!(parse_decimal(s).is_err(), "{s}");
        }
    }

    #[test]
    fn bounds() {
        assert!(check_amount(Decimal::from(-1), true).is_err());
        assert!(check_amount(Decimal::ZERO, false).is_err());
        assert!(check_amount(Decimal::ZERO, true).is_ok());
        assert!(check_amount(MAX_AMOUNT, false).is_ok());
        assert!(check_amount(MAX_AMOUNT + Decimal::new(1, 2), false).is_err());
        assert!(check_amount(Decimal::new(1, 7), false).is_err());
    }
}
