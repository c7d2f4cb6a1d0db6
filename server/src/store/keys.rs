//! The key layout of the single sled tree. Every key is a short namespace
//! tag followed by NUL-separated parts, so prefix scans follow the natural
//! order of ids (ids are fixed-width and sortable).
//!
//! Secondary index entries hold the primary id as their value; they are
//! written in the same batch as the record they index.

/// Joins a namespace tag and parts with NUL separators.
pub fn key(tag: &str, parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::with_capacity(tag.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.extend_from_slice(tag.as_bytes());
    for p in parts {
        k.push(0);
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// Like [`key`] but ending with a separator: the prefix of every key below it.
pub fn prefix(tag: &str, parts: &[&str]) -> Vec<u8> {
    let mut k = key(tag, parts);
    k.push(0);
    k
}

/// A time as a key part: fixed-width RFC 3339 UTC with milliseconds, so
/// byte order is time order.
pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    }
    // By hand: chrono's `format` interprets its pattern on every call, and a
    // settlement renders millions of these.
    let fields = [
        (year as u32, 4, b'-'),
        (t.month(), 2, b'-'),
        (t.day(), 2, b'T'),
        (t.hour(), 2, b':'),
        (t.minute(), 2, b':'),
        (t.second(), 2, b'.'),
        (t.nanosecond() / 1_000_000 % 1000, 3, b'Z'),
    ];
    let mut out = Vec::with_capacity(24);
    for (value, width, sep) in fields {
        for i in (0..width).rev() {
            out.push(b'0' + (value / 10u32.pow(i) % 10) as u8);
        }
        out.push(sep);
    }
    String::from_utf8(out).expect("ASCII digits and separators")
}

/// The key of event `id` in the event log (zero-padded: key order is id
/// order).
pub fn event(id: u64) -> Vec<u8> {
    key(EVENT, &[&format!("{id:020}")])
}

/// Server metadata (admin token hash, schema version).
pub const META: &str = "meta";
/// The store's id floor: [`crate::store::Store::next_id`] hands out
/// numbers from this value up. A backup writes it into its copy, so a
/// restored store never hands out an id the original already used (sled's
/// own id counter is not one of its keys and does not travel with them).
pub const ID_FLOOR: &[u8] = b"meta\0id_floor";
/// Branches by id.
pub const BRANCH: &str = "br";
/// A branch's own pipeline definition by branch id.
pub const PIPELINE: &str = "pl";
/// Brands by id.
pub const BRAND: &str = "bd";
/// FX rates by currency, then date.
pub const FX: &str = "fx";
/// Every version of an FX rate (the first and each correction) by
/// currency, date, then zero-padded version.
pub const FX_HISTORY: &str = "fx.rev";
/// Bearer tokens by SHA-256 hash.
pub const TOKEN: &str = "tk";
/// When a token was last used, by token id (written at most once a minute
/// per token, apart from the grant so it never conflicts with a revocation).
pub const TOKEN_USED: &str = "tk.used";
/// Index: tokens by id; the value is the token's hash (its key under
/// [`TOKEN`]).
pub const IX_TOKEN_ID: &str = "ix.tk.id";
/// Index: tokens by branch and id; the value is the token's hash.
pub const IX_TOKEN_BRANCH: &str = "ix.tk.br";
/// Browser sessions by the SHA-256 of their id (the cookie's value).
pub const SESSION: &str = "ss";
/// When a session was last used, by session hash (written at most once a
/// minute, apart from the session so it never conflicts with a sign-out).
pub const SESSION_SEEN: &str = "ss.seen";
/// Index: sessions by the id of the token they were opened with, then
/// session hash (a revocation ends them).
pub const IX_SESSION_TOKEN: &str = "ix.ss.tk";
/// Background jobs by id.
pub const JOB: &str = "job";
/// Index: jobs by branch, then id.
pub const IX_JOB_BRANCH: &str = "ix.job.br";
/// Customers by id.
pub const CUSTOMER: &str = "cu";
/// Communication records by id.
pub const RECORD: &str = "rc";
/// Deals by id.
pub const DEAL: &str = "dl";
/// Deal history by deal id, then zero-padded sequence.
pub const DEAL_HISTORY: &str = "dh";

/// Index: customers by branch.
pub const IX_CUSTOMER_BRANCH: &str = "ix.cu.br";
/// Index: customers by branch and owner.
pub const IX_CUSTOMER_OWNER: &str = "ix.cu.own";
/// Index: records by customer and time.
pub const IX_RECORD_CUSTOMER: &str = "ix.rc.cu";
/// Index: records by branch and author.
pub const IX_RECORD_AUTHOR: &str = "ix.rc.by";
/// Index: deals by branch.
pub const IX_DEAL_BRANCH: &str = "ix.dl.br";
/// Index: deals by branch and owner.
pub const IX_DEAL_OWNER: &str = "ix.dl.own";
/// Index: deals by branch and stage.
pub const IX_DEAL_STAGE: &str = "ix.dl.st";
/// Index: signed deals by branch and signing time ([`time`]).
pub const IX_DEAL_SIGNED: &str = "ix.dl.sg";
/// Index: customers by branch and the time of their first order ([`time`]).
pub const IX_CUSTOMER_FIRST_ORDER: &str = "ix.cu.fo";
/// Index: signed deals by customer and signing time ([`time`]).
pub const IX_DEAL_CUSTOMER_SIGNED: &str = "ix.dl.cs";
/// Index: signed contracts not cancelled by brand of their lines and
/// signing time ([`time`]); the first entry of a brand is its first sale.
pub const IX_BRAND_SIGNED: &str = "ix.bd.sg";
/// The signing stamp of a brand (`brand`, id) or customer (`customer`, id):
/// rewritten by every change to its signed contracts, so a write that chose
/// a new first sale from the index can expect that none arrived meanwhile.
pub const SIGNING_STAMP: &str = "sg.stamp";
/// Index: deals by customer.
pub const IX_DEAL_CUSTOMER: &str = "ix.dl.cu";
/// Index: customers by branch, tier and id; the value is the owner (empty
/// when unassigned), so tiering and team reports read tiers without
/// decoding customers.
pub const IX_CUSTOMER_TIER: &str = "ix.cu.tier";
/// Customer history (tier changes) by customer id, then zero-padded version.
pub const CUSTOMER_HISTORY: &str = "ch";
/// Earlier revisions of communication records by record id, then
/// zero-padded version (a record is corrected, never erased).
pub const RECORD_REVISION: &str = "rc.rev";
/// Index: open deals by branch and owner (for assignment and team reports).
pub const IX_DEAL_OPEN: &str = "ix.dl.open";
/// Branches whose tiers must be recomputed (a deal was signed): written in
/// the signing's batch, removed once the branch is re-tiered.
pub const TIER_DIRTY: &str = "tier.dirty";
/// Follow-up tasks by id.
pub const TASK: &str = "task";
/// Index: tasks by branch.
pub const IX_TASK_BRANCH: &str = "ix.task.br";
/// Index: open tasks by branch (follow-ups read only these).
pub const IX_TASK_OPEN: &str = "ix.task.open";
/// Index: tasks by deal.
pub const IX_TASK_DEAL: &str = "ix.task.dl";
/// Settlements by id.
pub const SETTLEMENT: &str = "st";
/// Index: settlements by branch, period and id.
pub const IX_SETTLEMENT_BRANCH: &str = "ix.st.br";
/// The current draft of a branch and period (its id).
pub const SETTLEMENT_DRAFT: &str = "st.draft";
/// What approved settlements paid, by branch, subject kind, subject,
/// subject period and rule (so a subject is never paid twice).
pub const SETTLED: &str = "st.paid";
/// Policies by name.
pub const POLICY: &str = "po";
/// Policy versions by name, then zero-padded version.
pub const POLICY_VERSION: &str = "pv";
/// Policy version bodies (script text or module bytes), like versions.
pub const POLICY_BODY: &str = "pb";
/// The event log by id ([`event`]), written by the store from the events a
/// batch carries.
pub const EVENT: &str = "ev";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_fixed_width_and_sort_by_time() {
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        for (t, want) in [
            ("2026-03-02T10:00:00Z", "2026-03-02T10:00:00.000Z"),
            ("2026-12-31T23:59:59.999Z", "2026-12-31T23:59:59.999Z"),
            ("1970-01-01T00:00:00.0071Z", "1970-01-01T00:00:00.007Z"),
        ] {
            assert_eq!(time(&at(t)), want);
            assert_eq!(
                time(&at(t)),
                at(t).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
        }
        assert!(time(&at("2026-03-02T10:00:00Z")) < time(&at("2026-03-02T10:00:00.001Z")));
    }
}
