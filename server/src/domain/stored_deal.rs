//! A deal's stored form. Every transition reads the deal and writes it back,
//! and as JSON that was the largest part of a transition's own work: times
//! and decimals parsed from text, every string scanned for escapes. The
//! binary form keeps times as seconds and nanoseconds and decimals as their
//! 16 bytes, so reading is copying, and it is about half the size of the
//! JSON for sled to log. Deals written before it (JSON, which always starts
//! with `{`) still decode, and are rewritten in binary when they next change.

use std::collections::BTreeMap;

use super::binary::{decode_either, Reader, Writer};
use super::deal::{Deal, Line};
use super::pipeline::StageKind;

/// The first byte of the binary form, version 1 (JSON starts with `{`; the
/// signing-index entries use 1, so a value read under the wrong key is
/// refused instead of misread).
const STORED_DEAL_V1: u8 = 0x02;

fn kind_byte(kind: StageKind) -> u8 {
    match kind {
        StageKind::Open => 0,
        StageKind::Won => 1,
        StageKind::Lost => 2,
    }
}

impl Deal {
    /// The bytes the store keeps for this deal.
    pub fn to_stored(&self) -> Vec<u8> {
        let mut w = Writer::tagged(STORED_DEAL_V1, 256 + 8 * self.stages_passed.len());
        w.str(&self.id);
        w.str(&self.branch);
        w.str(&self.customer_id);
        w.str(&self.title);
        w.str(&self.owner);
        w.str(&self.currency);
        w.strs(&self.needs);
        w.opt(self.prepayment_ratio.as_ref(), Writer::decimal);
        w.time(&self.opened_at);
        w.lines(&self.lines);
        w.decimal(&self.amount_total);
        w.decimal(&self.cost_total);
        w.str(&self.stage);
        w.time(&self.stage_entered_at);
        w.byte(kind_byte(self.stage_kind));
        w.strs(&self.stages_passed);
        w.opt(self.signed_at.as_ref(), Writer::time);
        w.opt(self.lost_at.as_ref(), Writer::time);
        w.strs(&self.new_brands);
        w.opt(self.cancelled_at.as_ref(), Writer::time);
        w.opt(self.cancel_reason.as_ref(), |w, s| w.str(s));
        w.attributes(&self.attributes);
        w.time(&self.created_at);
        w.time(&self.updated_at);
        w.u64(self.version);
        w.0
    }

    /// Decodes stored bytes: the binary form, or JSON as written before it.
    /// The error says what is wrong with the bytes.
    pub fn from_stored(raw: &[u8]) -> Result<Deal, String> {
        decode_either(raw, STORED_DEAL_V1, "stored deal", |r| {
            let deal = r.deal()?;
            r.finish()?;
            Ok(deal)
        })
    }
}

impl Writer {
    /// A deal's lines (shared with the signing-index entries).
    pub(crate) fn lines(&mut self, lines: &[Line]) {
        self.len(lines.len());
        for l in lines {
            self.str(&l.brand);
            self.str(&l.product);
            self.decimal(&l.amount);
            self.decimal(&l.cost);
        }
    }

    /// A deal's attributes (shared with the signing-index entries).
    pub(crate) fn attributes(&mut self, attributes: &BTreeMap<String, String>) {
        self.len(attributes.len());
        for (k, v) in attributes {
            self.str(k);
            self.str(v);
        }
    }
}

impl Reader<'_> {
    /// What [`Writer::lines`] wrote. Amounts come back normalised, as a
    /// line's amounts read from JSON are (`de_decimal`): both forms give
    /// one value.
    pub(crate) fn lines(&mut self) -> Result<Vec<Line>, String> {
        (0..self.len()?)
            .map(|_| {
                Ok(Line {
                    brand: self.str()?,
                    product: self.str()?,
                    amount: self.decimal()?.normalize(),
                    cost: self.decimal()?.normalize(),
                })
            })
            .collect()
    }

    /// What [`Writer::attributes`] wrote.
    pub(crate) fn attributes(&mut self) -> Result<BTreeMap<String, String>, String> {
        (0..self.len()?)
            .map(|_| Ok((self.str()?, self.str()?)))
            .collect()
    }

    /// The fields in the order [`Deal::to_stored`] writes them.
    fn deal(&mut self) -> Result<Deal, String> {
        Ok(Deal {
            id: self.str()?,
            branch: self.str()?,
            customer_id: self.str()?,
            title: self.str()?,
            owner: self.str()?,
            currency: self.str()?,
            needs: self.strs()?,
            prepayment_ratio: self.opt(Self::decimal)?,
            opened_at: self.time()?,
            lines: self.lines()?,
            amount_total: self.decimal()?,
            cost_total: self.decimal()?,
            stage: self.str()?,
            stage_entered_at: self.time()?,
            stage_kind: match self.byte()? {
                0 => StageKind::Open,
                1 => StageKind::Won,
                2 => StageKind::Lost,
                b => return Err(format!("a stage kind of {b}")),
            },
            stages_passed: self.strs()?,
            signed_at: self.opt(Self::time)?,
            lost_at: self.opt(Self::time)?,
            new_brands: self.strs()?,
            cancelled_at: self.opt(Self::time)?,
            cancel_reason: self.opt(Self::str)?,
            attributes: self.attributes()?,
            created_at: self.time()?,
            updated_at: self.time()?,
            version: self.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn deal() -> Deal {
        Deal {
            id: "deal_01".into(),
            branch: "east".into(),
            customer_id: "cus_01".into(),
            title: "Fleet \"renewal\" — 车队".into(),
            owner: "rep".into(),
            currency: "CNY".into(),
            needs: vec!["financing".into(), "fast delivery".into()],
            prepayment_ratio: Some("0.3".parse().expect("decimal")),
            opened_at: at("2026-03-01T08:00:00Z"),
            lines: vec![
                Line {
                    brand: "volvo".into(),
                    product: "XC90".into(),
                    amount: "600000.5".parse().expect("decimal"),
                    cost: "500000".parse().expect("decimal"),
                },
                Line {
                    brand: "scania".into(),
                    product: "R500".into(),
                    amount: Decimal::new(-125, 2),
                    cost: Decimal::ZERO,
                },
            ],
            amount_total: "599999.25".parse().expect("decimal"),
            cost_total: "500000".parse().expect("decimal"),
            stage: "sign".into(),
            stage_entered_at: at("2026-05-02T09:30:00.123456789Z"),
            stage_kind: StageKind::Won,
            stages_passed: vec!["lead".into(), "qualify".into(), "sign".into()],
            signed_at: Some(at("2026-05-02T09:30:00.123456789Z")),
            lost_at: None,
            new_brands: vec!["scania".into()],
            cancelled_at: Some(at("2026-06-01T00:00:00Z")),
            cancel_reason: Some("customer withdrew".into()),
            attributes: [("approval".to_string(), "granted".to_string())].into(),
            created_at: at("2026-03-01T08:00:01Z"),
            updated_at: at("2026-06-01T00:00:00Z"),
            version: 300,
        }
    }

    fn json(d: &Deal) -> serde_json::Value {
        serde_json::to_value(d).expect("a deal serialises")
    }

    #[test]
    fn the_binary_form_reads_back_the_deal_it_was_written_from() {
        let d = deal();
        let raw = d.to_stored();
        assert_eq!(raw[0], STORED_DEAL_V1);
        assert_eq!(json(&Deal::from_stored(&raw).expect("decodes")), json(&d));
        let mut bare = d;
        bare.prepayment_ratio = None;
        bare.signed_at = None;
        bare.cancelled_at = None;
        bare.cancel_reason = None;
        bare.stage_kind = StageKind::Lost;
        bare.lost_at = Some(at("2026-04-01T00:00:00Z"));
        bare.attributes.clear();
        bare.needs.clear();
        let raw = bare.to_stored();
        assert_eq!(
            json(&Deal::from_stored(&raw).expect("decodes")),
            json(&bare)
        );
    }

    #[test]
    fn a_deal_stored_as_json_before_still_reads() {
        let d = deal();
        let raw = serde_json::to_vec(&d).expect("json");
        assert_eq!(json(&Deal::from_stored(&raw).expect("decodes")), json(&d));
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic_or_a_wrong_deal() {
        let raw = deal().to_stored();
        for cut in 0..raw.len() {
            assert!(Deal::from_stored(&raw[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert!(Deal::from_stored(&longer)
            .expect_err("trailing byte")
            .contains("after the record"));
        let mut unknown = raw.clone();
        unknown[0] = 0x7f;
        assert!(Deal::from_stored(&unknown)
            .expect_err("unknown tag")
            .contains("0x7f"));
        // Every single-byte change either fails or decodes to some deal:
        // never a panic.
        for i in 1..raw.len() {
            let mut flipped = raw.clone();
            flipped[i] ^= 0xff;
            let _ = Deal::from_stored(&flipped);
        }
    }
}
