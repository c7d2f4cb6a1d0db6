//! Server-generated ids: a type prefix plus a fixed-width base-36 counter, so
//! ids sort in creation order, and the admin-chosen id syntax.

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const WIDTH: usize = 12;

/// Formats a server id such as `deal_00000000002s`.
pub fn server_id(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; WIDTH];
    let mut v = n;
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(v % 36) as usize];
        v /= 36;
    }
    format!("{prefix}_{}", std::str::from_utf8(&digits).expect("ascii"))
}

/// True for ids the admin chooses (branches, brands): `[a-z0-9-]{1,40}`.
pub fn is_slug(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_counter_order() {
        let a = server_id("deal", 35);
        let b = server_id("deal", 36);
        let c = server_id("deal", 1_000_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a, "deal_00000000000z");
    }

    #[test]
    fn slugs() {
        assert!(is_slug("shanghai-1"));
        assert!(!is_slug(""));
        assert!(!is_slug("Shanghai"));
        assert!(!is_slug(&"a".repeat(41)));
    }
}
