//! The byte-level parts of the server's binary record forms (stored deals
//! and signing-index entries): LEB128 lengths, length-prefixed UTF-8
//! strings, decimals as their 16 bytes, times as seconds and nanoseconds.
//! Reading refuses truncated or invalid bytes with a message, never panics.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;

/// Decodes `raw`: the binary form whose first byte is `tag`, read by `read`
/// from the bytes after it, or JSON as written before the binary forms (it
/// always starts with `{`). `what` names the record in errors.
pub(crate) fn decode_either<T: DeserializeOwned>(
    raw: &[u8],
    tag: u8,
    what: &str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, String>,
) -> Result<T, String> {
    match raw.first() {
        Some(&t) if t == tag => read(&mut Reader(&raw[1..])),
        Some(b'{') => serde_json::from_slice(raw).map_err(|e| e.to_string()),
        Some(b) => Err(format!("unknown {what} format {b:#04x}")),
        None => Err(format!("empty {what}")),
    }
}

/// Appends the binary form's parts.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    /// A writer whose first byte is `tag` (the form's version).
    pub(crate) fn tagged(tag: u8, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity);
        bytes.push(tag);
        Self(bytes)
    }

    /// A byte as is (an enum's tag).
    pub(crate) fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    /// A count that is not a length (a version), LEB128.
    pub(crate) fn u64(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    /// A length or count, LEB128.
    pub(crate) fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn strs(&mut self, list: &[String]) {
        self.len(list.len());
        for s in list {
            self.str(s);
        }
    }

    pub(crate) fn decimal(&mut self, d: &Decimal) {
        self.0.extend_from_slice(&d.serialize());
    }

    pub(crate) fn time(&mut self, t: &DateTime<Utc>) {
        self.0.extend_from_slice(&t.timestamp().to_le_bytes());
        self.0
            .extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
    }

    pub(crate) fn opt<T>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                write(self, v);
            }
        }
    }
}

/// Reads the binary form's parts, refusing truncated or invalid bytes.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!(
                "truncated: {n} bytes wanted, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn len(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        // No count can exceed the bytes left (each item takes one).
        match usize::try_from(n) {
            Ok(n) if n <= self.0.len() => Ok(n),
            _ => Err(format!("a count of {n} with {} bytes left", self.0.len())),
        }
    }

    /// A number written by [`Writer::u64`].
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number longer than 64 bits".into())
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(format!("{n} bytes after the record")),
        }
    }

    pub(crate) fn str(&mut self) -> Result<String, String> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| format!("a string that is not UTF-8: {e}"))
    }

    pub(crate) fn strs(&mut self) -> Result<Vec<String>, String> {
        let n = self.len()?;
        (0..n).map(|_| self.str()).collect()
    }

    pub(crate) fn decimal(&mut self) -> Result<Decimal, String> {
        let bytes: [u8; 16] = self.take(16)?.try_into().expect("16 bytes");
        // Flags: byte 2 is the scale, bit 7 of byte 3 the sign; the rest
        // must be zero for a valid decimal.
        if bytes[0] != 0 || bytes[1] != 0 || bytes[2] > 28 || bytes[3] & 0x7f != 0 {
            return Err("an invalid decimal".into());
        }
        Ok(Decimal::deserialize(bytes))
    }

    /// A time within years 1 to 9999 (what RFC 3339 text could hold, and
    /// what calendar arithmetic on it can take without overflowing).
    pub(crate) fn time(&mut self) -> Result<DateTime<Utc>, String> {
        use chrono::Datelike;
        let secs = i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        let nanos = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
        DateTime::from_timestamp(secs, nanos)
            .filter(|t| (1..=9999).contains(&t.year()))
            .ok_or_else(|| "a time out of range".into())
    }

    pub(crate) fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            b => Err(format!("an option tag of {b}")),
        }
    }

    /// Passes over a string or a list of strings without copying it.
    pub(crate) fn skip_str(&mut self) -> Result<(), String> {
        let n = self.len()?;
        self.take(n).map(drop)
    }

    pub(crate) fn skip_strs(&mut self) -> Result<(), String> {
        (0..self.len()?).try_for_each(|_| self.skip_str())
    }
}
