//! Bearer-token secrets: generated with the OS RNG, stored only as SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random token: `dft_` plus 32 random bytes in hex.
pub fn new_token() -> String {
    new_secret("dft_")
}

/// A new random secret with `prefix` (e.g. `dfs_` for a session id, or a
/// CSRF token): 32 random bytes in hex.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The stored form of a token. Tokens carry 256 bits of entropy, so a plain
/// SHA-256 (no salt, no stretching) is enough to make the stored hash useless
/// to an attacker while keeping the per-request lookup cheap.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn secrets_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
