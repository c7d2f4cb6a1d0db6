//! Per-owner counters of a branch (`keys::REP_COUNT`): an owner's A, B and
//! C customers, open deals and tracked overdue instants (see `overdue`),
//! moved in the batch of every change that moves them. Fair assignment
//! and the team report read one counter per rep instead of walking the
//! branch's indexes, so their cost does not grow with the branch.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{ServiceError, Services};
use crate::domain::customer::{Customer, Tier};
use crate::store::{counter, keys, Batch};

/// A-tier customers owned.
pub(crate) const A: usize = 0;
/// B-tier customers owned.
pub(crate) const B: usize = 1;
/// C-tier customers owned.
pub(crate) const C: usize = 2;
/// Open deals owned.
pub(crate) const OPEN_DEALS: usize = 3;
/// Overdue instants tracked for the owner (customers with a cadence, open
/// tasks): an owner with only tasks still has a counter, so the team
/// report finds them.
pub(crate) const TRACKED: usize = 4;
/// How many values a counter holds.
const SLOTS: usize = 5;

/// One owner's counts (the owner is `""` for customers without one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RepCount {
    /// A-tier customers.
    pub a: i64,
    /// B-tier customers.
    pub b: i64,
    /// C-tier customers.
    pub c: i64,
    /// Open deals.
    pub open_deals: i64,
    /// Tracked overdue instants.
    pub tracked: i64,
}

/// The counter key of `owner` in `branch`.
fn key(branch: &str, owner: &str) -> Vec<u8> {
    keys::key(keys::REP_COUNT, &[branch, owner])
}

/// Adds `delta` to one value of `owner`'s counter.
pub(crate) fn add(batch: &mut Batch, branch: &str, owner: &str, slot: usize, delta: i64) {
    let mut deltas = [Decimal::ZERO; SLOTS];
    deltas[slot] = Decimal::from(delta);
    batch.add(key(branch, owner), &deltas[..=slot]);
}

/// The tier slot of `tier`.
fn tier_slot(tier: Tier) -> usize {
    match tier {
        Tier::A => A,
        Tier::B => B,
        Tier::C => C,
    }
}

/// Moves the tier counts for a customer changed from `old` to `new`.
pub(crate) fn stage_customer(batch: &mut Batch, old: Option<&Customer>, new: &Customer) {
    let place = |c: &Customer| (c.tier, c.owner.clone().unwrap_or_default());
    let (was, is) = (old.map(place), place(new));
    if was.as_ref() == Some(&is) {
        return;
    }
    if let Some((tier, owner)) = was {
        add(batch, &new.branch, &owner, tier_slot(tier), -1);
    }
    add(batch, &new.branch, &is.1, tier_slot(is.0), 1);
}

/// Moves the open-deal count of a deal that was open under `was` and is
/// open under `is` (`None`: not open).
pub(crate) fn stage_open_deal(
    batch: &mut Batch,
    branch: &str,
    was: Option<&str>,
    is: Option<&str>,
) {
    if was == is {
        return;
    }
    if let Some(o) = was {
        add(batch, branch, o, OPEN_DEALS, -1);
    }
    if let Some(o) = is {
        add(batch, branch, o, OPEN_DEALS, 1);
    }
}

impl Services {
    /// Every owner's counts in `branch`, by owner (`""`: no owner).
    pub(crate) fn rep_counts(
        &self,
        branch: &str,
    ) -> Result<BTreeMap<String, RepCount>, ServiceError> {
        let prefix = keys::prefix(keys::REP_COUNT, &[branch]);
        let mut out = BTreeMap::new();
        for (k, v) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let owner = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.insert(owner, decode(&v));
        }
        Ok(out)
    }

    /// One owner's counts in `branch`.
    pub(crate) fn rep_count(&self, branch: &str, owner: &str) -> Result<RepCount, ServiceError> {
        Ok(self
            .repo
            .store()
            .get(&key(branch, owner))?
            .map(|v| decode(&v))
            .unwrap_or_default())
    }
}

/// A stored counter's counts.
fn decode(value: &[u8]) -> RepCount {
    let v = counter::decode(Some(value));
    let at = |i| i64::try_from(counter::at(&v, i)).unwrap_or_default();
    RepCount {
        a: at(A),
        b: at(B),
        c: at(C),
        open_deals: at(OPEN_DEALS),
        tracked: at(TRACKED),
    }
}
