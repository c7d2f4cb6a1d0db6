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
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Server metadata (admin token hash, schema version).
pub const META: &str = "meta";
/// Branches by id.
pub const BRANCH: &str = "br";
/// A branch's own pipeline definition by branch id.
pub const PIPELINE: &str = "pl";
/// Brands by id.
pub const BRAND: &str = "bd";
/// FX rates by currency, then date.
pub const FX: &str = "fx";
/// Bearer tokens by SHA-256 hash.
pub const TOKEN: &str = "tk";
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
/// Index: deals by customer.
pub const IX_DEAL_CUSTOMER: &str = "ix.dl.cu";
/// Follow-up tasks by id.
pub const TASK: &str = "task";
/// Index: tasks by branch.
pub const IX_TASK_BRANCH: &str = "ix.task.br";
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
