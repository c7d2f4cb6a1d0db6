//! A signed deal as settlements and tiering read it, and its compact binary
//! form: the value of both signing indexes. A quarter's settlement decodes a
//! million of them; as JSON that cost about 4 µs each (dates and decimals
//! parsed from text), more than running a rule on them. The binary form
//! keeps times as seconds and nanoseconds and decimals as their 16 bytes, so
//! decoding is copying. Entries written before it (JSON, which always starts
//! with `{`) still decode.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::binary::{decode_either, Reader, Writer};
use crate::domain::deal::{Deal, Line};

/// A signed deal as a settlement reads it: only the fields bonus rules see.
/// The signing indexes carry it as their value (written with the deal in
/// one batch), so a settlement streams a period's deals from one range scan
/// instead of fetching and decoding each full record; a stored `Deal` also
/// decodes into it (its other fields are skipped, not parsed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DealRecord {
    /// Deal id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Owning rep.
    pub owner: String,
    /// Its customer.
    pub customer_id: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Recorded needs.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Prepayment share, 0 to 1.
    #[serde(default)]
    pub prepayment_ratio: Option<Decimal>,
    /// When opened.
    pub opened_at: DateTime<Utc>,
    /// Current stage.
    pub stage: String,
    /// Every stage so far.
    #[serde(default)]
    pub stages_passed: Vec<String>,
    /// When signed.
    #[serde(default)]
    pub signed_at: Option<DateTime<Utc>>,
    /// Lines.
    pub lines: Vec<Line>,
    /// Sum of line amounts.
    pub amount_total: Decimal,
    /// Sum of line costs.
    pub cost_total: Decimal,
    /// Brands whose first sale it is (`Deal::new_brands`).
    #[serde(default)]
    pub new_brands: Vec<String>,
    /// Attributes set by after-hooks.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// When the signed contract was cancelled.
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why.
    #[serde(default)]
    pub cancel_reason: Option<String>,
}

impl From<&Deal> for DealRecord {
    fn from(d: &Deal) -> Self {
        DealRecord {
            id: d.id.clone(),
            title: d.title.clone(),
            owner: d.owner.clone(),
            customer_id: d.customer_id.clone(),
            currency: d.currency.clone(),
            needs: d.needs.clone(),
            prepayment_ratio: d.prepayment_ratio,
            opened_at: d.opened_at,
            stage: d.stage.clone(),
            stages_passed: d.stages_passed.clone(),
            signed_at: d.signed_at,
            lines: d.lines.clone(),
            amount_total: d.amount_total,
            cost_total: d.cost_total,
            new_brands: d.new_brands.clone(),
            attributes: d.attributes.clone(),
            cancelled_at: d.cancelled_at,
            cancel_reason: d.cancel_reason.clone(),
        }
    }
}

/// The first byte of the binary form, version 1 (JSON starts with `{`).
const BINARY_V1: u8 = 1;

impl DealRecord {
    /// Its signing-index value: the binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::tagged(BINARY_V1, 256);
        w.str(&self.id);
        w.str(&self.title);
        w.str(&self.owner);
        w.str(&self.customer_id);
        w.str(&self.currency);
        w.strs(&self.needs);
        w.opt(self.prepayment_ratio.as_ref(), Writer::decimal);
        w.time(&self.opened_at);
        w.str(&self.stage);
        w.strs(&self.stages_passed);
        w.opt(self.signed_at.as_ref(), Writer::time);
        w.lines(&self.lines);
        w.decimal(&self.amount_total);
        w.decimal(&self.cost_total);
        w.strs(&self.new_brands);
        w.attributes(&self.attributes);
        w.opt(self.cancelled_at.as_ref(), Writer::time);
        w.opt(self.cancel_reason.as_ref(), |w, s| w.str(s));
        w.0
    }

    /// Decodes a signing-index value: the binary form, or JSON as written
    /// before it. The error says what is wrong with the bytes.
    pub fn decode(raw: &[u8]) -> Result<DealRecord, String> {
        decode_either(raw, BINARY_V1, RECORD, |r| {
            let record = r.record()?;
            r.finish()?;
            Ok(record)
        })
    }
}

/// What errors call a signing-index value.
const RECORD: &str = "deal record";

/// What revenue counts of a signed deal (tiering reads a year of a branch's
/// signings): decoded without building the rest of the record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SignedRevenue {
    /// The customer.
    pub customer_id: String,
    /// The deal's owner.
    pub owner: String,
    /// Its currency.
    pub currency: String,
    /// Sum of line amounts.
    pub amount_total: Decimal,
    /// When signed.
    #[serde(default)]
    pub signed_at: Option<DateTime<Utc>>,
    /// When the contract was cancelled.
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl SignedRevenue {
    /// Decodes it from a signing-index value, either form, skipping the
    /// other fields.
    pub fn decode(raw: &[u8]) -> Result<SignedRevenue, String> {
        decode_either(raw, BINARY_V1, RECORD, |r| r.revenue())
    }
}

impl Reader<'_> {
    /// [`SignedRevenue`]'s fields, in the order of [`Reader::record`].
    fn revenue(&mut self) -> Result<SignedRevenue, String> {
        self.skip_str()?; // id
        self.skip_str()?; // title
        let owner = self.str()?;
        let customer_id = self.str()?;
        let currency = self.str()?;
        self.skip_strs()?; // needs
        self.opt(Self::decimal)?; // prepayment_ratio
        self.take(12)?; // opened_at
        self.skip_str()?; // stage
        self.skip_strs()?; // stages_passed
        let signed_at = self.opt(Self::time)?;
        for _ in 0..self.len()? {
            self.skip_str()?; // brand
            self.skip_str()?; // product
            self.take(32)?; // amount, cost
        }
        let amount_total = self.decimal()?;
        self.take(16)?; // cost_total
        self.skip_strs()?; // new_brands
        for _ in 0..self.len()? {
            self.skip_str()?;
            self.skip_str()?;
        }
        let cancelled_at = self.opt(Self::time)?;
        Ok(SignedRevenue {
            customer_id,
            owner,
            currency,
            amount_total,
            signed_at,
            cancelled_at,
        })
    }

    fn record(&mut self) -> Result<DealRecord, String> {
        Ok(DealRecord {
            id: self.str()?,
            title: self.str()?,
            owner: self.str()?,
            customer_id: self.str()?,
            currency: self.str()?,
            needs: self.strs()?,
            prepayment_ratio: self.opt(Self::decimal)?,
            opened_at: self.time()?,
            stage: self.str()?,
            stages_passed: self.strs()?,
            signed_at: self.opt(Self::time)?,
            lines: self.lines()?,
            amount_total: self.decimal()?,
            cost_total: self.decimal()?,
            new_brands: self.strs()?,
            attributes: self.attributes()?,
            cancelled_at: self.opt(Self::time)?,
            cancel_reason: self.opt(Self::str)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> DealRecord {
        let t = |s: i64, n: u32| DateTime::from_timestamp(s, n).unwrap();
        let dec = |m: i64, s: u32| Decimal::new(m, s);
        DealRecord {
            id: format!("deal_{i}"),
            title: if i.is_multiple_of(2) {
                String::new()
            } else {
                "Flotte — 車隊 🚚".into()
            },
            owner: "li".into(),
            customer_id: "cus_1".into(),
            currency: "EUR".into(),
            needs: (0..i % 3).map(|n| format!("need {n}")).collect(),
            prepayment_ratio: (i % 2 == 1).then(|| dec(4999, 4)),
            opened_at: t(-86_400 * 365 * (i as i64 % 3), 999_999_999),
            stage: "sign".into(),
            stages_passed: vec!["lead".into(), "sign".into()],
            signed_at: (!i.is_multiple_of(5)).then(|| t(1_767_225_600 + i as i64, (i as u32) * 7)),
            lines: (0..i % 4)
                .map(|n| Line {
                    brand: format!("b{n}"),
                    product: "x".repeat(n as usize * 100),
                    amount: dec(i64::MAX - n as i64, 28 - n as u32),
                    cost: dec(-(n as i64) * 12_345, 2),
                })
                .collect(),
            amount_total: Decimal::MAX,
            cost_total: Decimal::MIN,
            new_brands: vec!["b0".into()],
            attributes: (0..i % 3)
                .map(|n| (format!("k{n}"), format!("v{n}")))
                .collect(),
            cancelled_at: (i.is_multiple_of(7)).then(|| t(0, 0)),
            cancel_reason: (i.is_multiple_of(7)).then(|| "changed their mind".into()),
        }
    }

    /// Equal field by field, decimals to the scale (`1.50` is not `1.5`).
    fn same(a: &DealRecord, b: &DealRecord) {
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        );
        let scales = |r: &DealRecord| {
            let mut d: Vec<[u8; 16]> = r
                .lines
                .iter()
                .flat_map(|l| [l.amount.serialize(), l.cost.serialize()])
                .collect();
            d.extend([r.amount_total.serialize(), r.cost_total.serialize()]);
            d.extend(r.prepayment_ratio.map(|p| p.serialize()));
            d
        };
        assert_eq!(scales(a), scales(b));
    }

    #[test]
    fn the_binary_form_decodes_to_what_the_json_form_did() {
        for i in 0..200 {
            let r = record(i);
            let raw = r.encode();
            assert_eq!(raw[0], BINARY_V1);
            let from_json = DealRecord::decode(&serde_json::to_vec(&r).unwrap()).unwrap();
            let from_binary = DealRecord::decode(&raw).unwrap();
            same(&from_json, &from_binary);
            // Nothing else is lost: lines are only normalised.
            assert_eq!(from_binary.lines.len(), r.lines.len());
            for (x, y) in r.lines.iter().zip(&from_binary.lines) {
                assert_eq!((x.amount, x.cost), (y.amount, y.cost));
            }
            same(
                &DealRecord {
                    lines: vec![],
                    ..r.clone()
                },
                &DealRecord {
                    lines: vec![],
                    ..from_binary
                },
            );
        }
    }

    #[test]
    fn the_revenue_view_reads_what_the_whole_record_holds() {
        for i in 0..200 {
            let r = record(i);
            let want = SignedRevenue {
                customer_id: r.customer_id.clone(),
                owner: r.owner.clone(),
                currency: r.currency.clone(),
                amount_total: r.amount_total,
                signed_at: r.signed_at,
                cancelled_at: r.cancelled_at,
            };
            assert_eq!(SignedRevenue::decode(&r.encode()).unwrap(), want);
            let json = serde_json::to_vec(&r).unwrap();
            assert_eq!(SignedRevenue::decode(&json).unwrap(), want);
        }
        // Every truncation before `cancelled_at` (the last byte, the
        // reason's tag, is not read).
        let raw = record(13).encode();
        for cut in 0..raw.len() - 1 {
            assert!(SignedRevenue::decode(&raw[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic_or_a_wrong_record() {
        let raw = record(13).encode();
        // Every truncation.
        for cut in 0..raw.len() {
            assert!(DealRecord::decode(&raw[..cut]).is_err(), "cut at {cut}");
        }
        // Trailing bytes, an unknown format, a bad option tag.
        assert!(DealRecord::decode(&[raw.as_slice(), &[0]].concat())
            .unwrap_err()
            .contains("after the record"));
        assert!(DealRecord::decode(&[9, 0]).unwrap_err().contains("format"));
        // A count larger than the bytes left, and a runaway length.
        assert!(DealRecord::decode(&[1, 0xff, 0xff, 0x03]).is_err());
        assert!(DealRecord::decode(&[&[1u8][..], &[0xff; 12]].concat()).is_err());
        // Every single flipped byte either fails or decodes to something
        // (never panics).
        for at in 1..raw.len() {
            let mut bad = raw.clone();
            bad[at] ^= 0xa5;
            let _ = DealRecord::decode(&bad);
        }
    }

    #[test]
    fn an_invalid_decimal_or_string_is_refused() {
        let r = DealRecord {
            lines: vec![],
            ..record(2)
        };
        let raw = r.encode();
        // amount_total's flags sit 32 + 4 bytes before the end (two
        // decimals, an empty new-brand list is 1 + 3 bytes… find it instead).
        let at = raw
            .windows(16)
            .position(|w| w == Decimal::MAX.serialize())
            .unwrap();
        let mut bad = raw.clone();
        bad[at + 2] = 29;
        assert!(DealRecord::decode(&bad).unwrap_err().contains("decimal"));
        // The id's first byte (after the format and its length) as 0xff.
        let mut bad = raw;
        bad[2] = 0xff;
        assert!(DealRecord::decode(&bad).unwrap_err().contains("UTF-8"));
        // A time no text form could hold (year 20,982) is refused.
        let far = DealRecord {
            opened_at: DateTime::from_timestamp(600_000_000_000, 0).unwrap(),
            ..record(2)
        };
        assert!(DealRecord::decode(&far.encode())
            .unwrap_err()
            .contains("time out of range"));
    }
}
