//! Money and other decimals: strict parsing of the interface's decimal
//! strings and plain formatting, with `rust_decimal` (exact base-10
//! arithmetic; never binary floating point).

pub use rust_decimal::{Decimal, RoundingStrategy};

/// The longest decimal string accepted.
pub const MAX_LEN: usize = 40;

/// Parses a plain decimal string such as `"10000.01"` or `"-3"`.
///
/// Strict: an optional sign, digits, and at most one `.` followed by digits.
/// No spaces, exponents, thousands separators or empty parts.
///
/// ```
/// use dealflow_plugin_sdk::money;
/// assert_eq!(money::parse("10000.01").unwrap().to_string(), "10000.01");
/// assert!(money::parse("1e5").is_err());
/// assert!(money::parse(" 1").is_err());
/// assert!(money::parse("1.").is_err());
/// ```
pub fn parse(s: &str) -> Result<Decimal, String> {
    let bad = || format!("`{s}` is not a decimal number");
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(bad());
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(bad());
    }
    s.parse::<Decimal>().map_err(|_| bad())
}

/// Parses the decimal field `name`, naming it in the error.
pub fn parse_field(name: &str, s: &str) -> Result<Decimal, String> {
    parse(s).map_err(|e| format!("{name}: {e}"))
}

/// Formats a decimal plainly, without trailing zeros (`"300"`, `"0.1"`).
pub fn format(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Rounds half away from zero to `places` decimals (how money is rounded).
pub fn round(d: Decimal, places: u32) -> Decimal {
    d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero)
}

/// Formats with exactly `places` decimals and thousands separators, for
/// explanations: `display(Decimal::new(1000001, 2), 2) == "10,000.01"`.
pub fn display(d: Decimal, places: u32) -> String {
    let mut r = round(d, places);
    r.rescale(places);
    let text = r.abs().to_string();
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
    if r.is_sign_negative() && !r.is_zero() {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_plain_decimals_only() {
        for ok in ["0", "10000.01", "-3", "+3.5", "007", "0.000001"] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "1e5", " 1", "1 ", "1.", ".5", "1,000", "--1", "1.2.3", "NaN", "-", "0x10", "١",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&"9".repeat(41)).is_err());
    }

    #[test]
    fn format_drops_trailing_zeros() {
        assert_eq!(format(parse("300.00").unwrap()), "300");
        assert_eq!(format(parse("0.10").unwrap()), "0.1");
    }

    #[test]
    fn display_groups_thousands_and_rounds() {
        assert_eq!(display(parse("10000.005").unwrap(), 2), "10,000.01");
        assert_eq!(display(parse("1000000").unwrap(), 0), "1,000,000");
        assert_eq!(display(parse("-1234.5").unwrap(), 2), "-1,234.50");
        assert_eq!(display(parse("999").unwrap(), 2), "999.00");
        assert_eq!(display(parse("-0.001").unwrap(), 2), "0.00");
    }
}
