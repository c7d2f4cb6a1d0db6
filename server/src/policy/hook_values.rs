//! Hook inputs' values built from domain values: plain functions, no I/O,
//! so every layer that asks a policy builds the same records. Times are
//! rendered as RFC 3339 UTC with milliseconds, so they compare as strings.

use chrono::{DateTime, Utc};

use super::hooks::{ActorInfo, BranchInfo, CustomerInfo};
use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::customer::Customer;
use crate::store::keys;

/// A time as hooks see it (the same text as in keys: it sorts by time).
pub fn ts(t: &DateTime<Utc>) -> String {
    keys::time(t)
}

/// The wire name of a closed-set value (`"self_developed"`, `"A"`).
pub fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A branch, for hooks (its time zone).
pub fn branch_info(b: Branch) -> BranchInfo {
    BranchInfo {
        id: b.id,
        timezone: b.timezone,
    }
}

/// A customer, for hooks.
pub fn customer_info(c: &Customer) -> CustomerInfo {
    CustomerInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        segment: json_name(&c.segment),
        source: json_name(&c.source),
        tier: json_name(&c.tier),
        owner: c.owner.clone(),
        referred_by: c.referred_by.clone(),
        last_contact_at: c.last_contact_at.as_ref().map(ts),
    }
}

/// The caller, for hooks.
pub fn actor_info(p: &Principal) -> ActorInfo {
    ActorInfo {
        user: p.user.clone(),
        role: json_name(&p.role),
    }
}
