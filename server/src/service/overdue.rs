//! How many of an owner's instants lie before now, without reading them
//! all: the team report's overdue follow-ups (customers past their overdue
//! time, open tasks past their due time) at the moment it is asked.
//!
//! Every tracked instant adds one to four nested buckets of its owner
//! (its hour, day, 32-day and 512-day spans, counted in whole hours since
//! 1970 UTC, `keys::OVERDUE`) and is listed in an exact index
//! (`keys::IX_OVERDUE`). The count before `now` is the sum of the
//! 512-day buckets before now's, the 32-day buckets before now's within
//! it, the days before today within that, the hours before this one
//! today, and the exact entries of the current hour: at most about 90
//! small reads, however many instants the owner has.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{rep_counts, ServiceError, Services};
use crate::store::{counter, keys, Batch};

/// Milliseconds in an hour.
const HOUR_MS: i64 = 3_600_000;
/// The bucket levels, finest first: a tag and a size in hours (each a
/// whole number of the level below).
const LEVELS: [(&str, i64); 4] = [("h", 1), ("d", 24), ("m", 24 * 32), ("y", 24 * 512)];

/// The key of bucket `n` of a level.
fn bucket(branch: &str, owner: &str, level: &str, n: i64) -> Vec<u8> {
    keys::key(keys::OVERDUE, &[branch, owner, level, &keys::sortable(n)])
}

/// The exact entry of an instant.
fn exact(branch: &str, owner: &str, at: &DateTime<Utc>, id: &str) -> Vec<u8> {
    keys::key(keys::IX_OVERDUE, &[branch, owner, &keys::instant(at), id])
}

/// Counts (`delta` 1) or stops counting (`delta` -1) instant `at` of `id`
/// (a customer or task) for `owner` (`""`: none) in `branch`.
pub(crate) fn stage_instant(
    batch: &mut Batch,
    branch: &str,
    owner: &str,
    id: &str,
    at: &DateTime<Utc>,
    delta: i64,
) {
    let hour = at.timestamp_millis().div_euclid(HOUR_MS);
    for (level, size) in LEVELS {
        batch.add(
            bucket(branch, owner, level, hour.div_euclid(size)),
            &[Decimal::from(delta)],
        );
    }
    let key = exact(branch, owner, at, id);
    if delta > 0 {
        batch.put(key, Vec::new());
    } else {
        batch.delete(key);
    }
    rep_counts::add(batch, branch, owner, rep_counts::TRACKED, delta);
}

impl Services {
    /// How many instants of `owner` in `branch` lie strictly before `now`.
    pub(crate) fn count_before(
        &self,
        branch: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, ServiceError> {
        let ms = now.timestamp_millis();
        let hour = ms.div_euclid(HOUR_MS);
        let mut total = Decimal::ZERO;
        // Level by level, coarsest first: the buckets before now's one,
        // within now's bucket of the level above (every one at the top).
        for (i, (level, size)) in LEVELS.iter().enumerate().rev() {
            let end = hour.div_euclid(*size);
            let start = match LEVELS.get(i + 1) {
                Some((_, parent)) => hour.div_euclid(*parent) * (parent / size),
                None => i64::MIN + 1,
            };
            if start >= end {
                continue;
            }
            let prefix = keys::prefix(keys::OVERDUE, &[branch, owner, level]);
            let after = (start > i64::MIN + 1).then(|| bucket(branch, owner, level, start - 1));
            let stop = bucket(branch, owner, level, end);
            self.repo.walk(&prefix, after, 64, |k, v| {
                if k >= stop.as_slice() {
                    return Ok(false);
                }
                total += counter::at(&counter::decode(Some(v)), 0);
                Ok(true)
            })?;
        }
        let mut count = i64::try_from(total).unwrap_or_default();
        // The current hour, entry by entry.
        let prefix = keys::prefix(keys::IX_OVERDUE, &[branch, owner]);
        let from = DateTime::<Utc>::from_timestamp_millis(hour * HOUR_MS).unwrap_or(now);
        let after = [prefix.as_slice(), keys::instant(&from).as_bytes()].concat();
        let stop = [prefix.as_slice(), keys::instant(&now).as_bytes()].concat();
        self.repo.walk(&prefix, Some(after), 256, |k, _| {
            if k >= stop.as_slice() {
                return Ok(false);
            }
            count += 1;
            Ok(true)
        })?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{Durability, SledStore};

    /// Instants spread over years (before and after 1970 too), counted at
    /// many moments, against counting them one by one.
    #[tokio::test]
    async fn the_count_before_any_moment_matches_counting_every_instant() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(dir.path(), Durability::None).expect("open");
        let services = Services::new(Arc::new(store)).expect("engines");
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let base = DateTime::<Utc>::from_timestamp_millis(1_780_000_000_000).unwrap();
        let mut instants = Vec::new();
        let mut batch = Batch::new();
        for i in 0..600 {
            // Clustered around `base` (same hours, days) and far from it.
            let spread = [
                60_000u64,
                3_600_000,
                86_400_000,
                40 * 86_400_000,
                4_000 * 86_400_000,
            ];
            let width = spread[next(spread.len() as u64) as usize];
            let offset = next(2 * width) as i64 - width as i64;
            let at = base + chrono::Duration::milliseconds(offset);
            let owner = if i % 3 == 0 { "" } else { "li" };
            stage_instant(&mut batch, "b", owner, &format!("cus_{i}"), &at, 1);
            instants.push((owner, at, i));
        }
        services.repo.commit(batch).await.expect("commit");
        // Some stop being tracked.
        let mut batch = Batch::new();
        for (owner, at, i) in instants.iter().filter(|(_, _, i)| i % 5 == 0) {
            stage_instant(&mut batch, "b", owner, &format!("cus_{i}"), at, -1);
        }
        services.repo.commit(batch).await.expect("commit");
        instants.retain(|(_, _, i)| i % 5 != 0);
        let mut moments: Vec<DateTime<Utc>> = instants.iter().map(|(_, at, _)| *at).collect();
        for _ in 0..200 {
            let offset = next(8_000 * 86_400_000) as i64 - 4_000 * 86_400_000;
            moments.push(base + chrono::Duration::milliseconds(offset));
        }
        for now in moments {
            for owner in ["", "li", "nobody"] {
                let expected = instants
                    .iter()
                    .filter(|(o, at, _)| *o == owner && *at < now)
                    .count() as i64;
                let counted = services.count_before("b", owner, now).expect("count");
                assert_eq!(counted, expected, "owner {owner:?} at {now}");
            }
        }
        let li = services.rep_count("b", "li").expect("count");
        assert_eq!(
            li.tracked,
            instants.iter().filter(|(o, _, _)| *o == "li").count() as i64
        );
    }
}
