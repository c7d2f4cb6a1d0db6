//! Which bonus-rule versions are in force for a branch on a given business
//! day, from each policy's activation history (effective dating), with an
//! optional candidate version for simulations.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use parking_lot::Mutex;

use super::policies::Policy;
use super::{ServiceError, Services};
use crate::domain::settlement::LinePolicy;
use crate::policy::config::PolicyConfig;
use crate::policy::hooks::Hook;
use crate::policy::live::Scope;
use crate::policy::Executable;
use crate::store::keys;

/// A compiled version of a bonus policy.
pub struct RuleVersion {
    /// Name, version and hash (what a line records).
    pub policy: LinePolicy,
    /// Whether the policy is the branch's own (it overrides global ones).
    pub own: bool,
    /// The compiled version.
    pub exec: Arc<dyn Executable>,
}

/// A version as activated: its number and the activation's parameters.
type Activated = (u64, PolicyConfig);

/// A policy's versions over business time: `(from, version)`, oldest
/// first; `from: None` is the beginning of time, `version: None` none.
type Timeline = Vec<(Option<NaiveDate>, Option<Activated>)>;

/// Replays activations: one without a date replaces the whole timeline;
/// one effective from a date applies from that date on (and replaces
/// whatever was set to start on or after it).
fn apply(timeline: &mut Timeline, version: Option<Activated>, from: Option<NaiveDate>) {
    match from {
        None => *timeline = vec![(None, version)],
        Some(f) => {
            timeline.retain(|(start, _)| start.is_none_or(|s| s < f));
            timeline.push((Some(f), version));
        }
    }
}

fn version_on(timeline: &Timeline, day: NaiveDate) -> Option<&Activated> {
    timeline
        .iter()
        .rev()
        .find(|(start, _)| start.is_none_or(|s| s <= day))
        .and_then(|(_, v)| v.as_ref())
}

/// The bonus rules of one branch over business time.
pub struct RuleBook {
    /// Each bonus policy that applies to the branch, with its timeline.
    policies: Vec<(String, bool, Timeline)>,
    /// Compiled versions by (name, version, the activation's parameters);
    /// only those implementing `bonus`.
    versions: HashMap<(String, Activated), Arc<RuleVersion>>,
    /// The rules in force by day, filled as days are asked for.
    by_day: Mutex<HashMap<NaiveDate, Arc<Vec<Arc<RuleVersion>>>>>,
}

impl RuleBook {
    /// The rules in force on `day`: the branch's own bonus policies when it
    /// has any in force that day, the global ones otherwise (as for every
    /// hook), in policy-name order.
    pub fn on(&self, day: NaiveDate) -> Arc<Vec<Arc<RuleVersion>>> {
        if let Some(r) = self.by_day.lock().get(&day) {
            return Arc::clone(r);
        }
        let in_force: Vec<Arc<RuleVersion>> = self
            .policies
            .iter()
            .filter_map(|(name, _, t)| {
                let v = version_on(t, day)?;
                self.versions.get(&(name.clone(), v.clone())).cloned()
            })
            .collect();
        let any_own = in_force.iter().any(|r| r.own);
        let rules: Vec<_> = in_force.into_iter().filter(|r| r.own == any_own).collect();
        let rules = Arc::new(rules);
        self.by_day.lock().insert(day, Arc::clone(&rules));
        rules
    }
}

impl RuleBook {
    /// A book in which `rules` are in force on every day (benchmarks and
    /// previews with rules that are not stored).
    pub fn fixed(rules: Vec<RuleVersion>) -> RuleBook {
        let mut policies = Vec::new();
        let mut versions = HashMap::new();
        for r in rules {
            let (name, v) = (r.policy.name.clone(), r.policy.version);
            let activated = (v, PolicyConfig::new());
            policies.push((name.clone(), r.own, vec![(None, Some(activated.clone()))]));
            versions.insert((name, activated), Arc::new(r));
        }
        RuleBook {
            policies,
            versions,
            by_day: Mutex::default(),
        }
    }
}

/// A candidate version to simulate as if activated.
pub struct Candidate<'a> {
    /// Policy name.
    pub name: &'a str,
    /// Version.
    pub version: u64,
    /// As `activate`'s `effective_from`.
    pub effective_from: Option<NaiveDate>,
}

impl Services {
    /// The bonus rules for `branch`, as stored, or with `candidate` applied
    /// as if it had just been activated.
    pub(crate) fn rule_book(
        &self,
        branch: &str,
        candidate: Option<&Candidate<'_>>,
    ) -> Result<RuleBook, ServiceError> {
        let mut policies = Vec::new();
        let mut versions = HashMap::new();
        let mut found_candidate = false;
        for (key, raw) in
            self.repo
                .store()
                .scan(&keys::prefix(keys::POLICY, &[]), None, usize::MAX)?
        {
            let p: Policy = super::repo::decode(&key, &raw)?;
            let own = match &p.scope {
                Scope::Global => false,
                Scope::Branch(b) if b == branch => true,
                Scope::Branch(_) => continue,
            };
            let mut timeline = Timeline::new();
            for a in &p.activations {
                let activated = a.version.map(|v| (v, a.config.clone()));
                apply(&mut timeline, activated, a.effective_from);
            }
            if let Some(c) = candidate.filter(|c| c.name == p.name) {
                apply(
                    &mut timeline,
                    Some((c.version, PolicyConfig::new())),
                    c.effective_from,
                );
                found_candidate = true;
            }
            let mut bonus = false;
            for (v, overrides) in timeline.iter().filter_map(|(_, v)| v.as_ref()) {
                let (meta, exec) = self.configured(&p.name, *v, overrides)?;
                if exec.hooks().contains(&Hook::Bonus) {
                    bonus = true;
                    versions.insert(
                        (p.name.clone(), (*v, overrides.clone())),
                        Arc::new(RuleVersion {
                            policy: LinePolicy {
                                name: p.name.clone(),
                                version: *v,
                                sha256: meta.sha256,
                            },
                            own,
                            exec,
                        }),
                    );
                }
            }
            if bonus {
                policies.push((p.name, own, timeline));
            }
        }
        if let Some(c) = candidate.filter(|_| !found_candidate) {
            return Err(ServiceError::invalid(
                "name",
                format!("policy `{}` does not apply to branch `{branch}`", c.name),
            ));
        }
        Ok(RuleBook {
            policies,
            versions,
            by_day: Mutex::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Version `n` as activated without parameters.
    fn v(n: u64) -> Option<Activated> {
        Some((n, PolicyConfig::new()))
    }

    /// The version number in force on `day`.
    fn on(t: &Timeline, day: NaiveDate) -> Option<u64> {
        version_on(t, day).map(|(n, _)| *n)
    }

    #[test]
    fn effective_dating_replays_activations() {
        let mut t = Timeline::new();
        apply(&mut t, v(1), None);
        assert_eq!(on(&t, d("2020-01-01")), Some(1));
        apply(&mut t, v(2), Some(d("2026-04-01")));
        assert_eq!(on(&t, d("2026-03-31")), Some(1));
        assert_eq!(on(&t, d("2026-04-01")), Some(2));
        // A later activation from an earlier date replaces what started after it.
        apply(&mut t, v(3), Some(d("2026-02-01")));
        assert_eq!(on(&t, d("2026-01-31")), Some(1));
        assert_eq!(on(&t, d("2026-05-01")), Some(3));
        // Deactivation from a date: nothing in force from then on.
        apply(&mut t, None, Some(d("2026-06-01")));
        assert_eq!(on(&t, d("2026-06-01")), None);
        assert_eq!(on(&t, d("2026-05-31")), Some(3));
        // An activation without a date applies to every day.
        apply(&mut t, v(4), None);
        assert_eq!(on(&t, d("2000-01-01")), Some(4));
        assert_eq!(on(&t, d("2030-01-01")), Some(4));
    }
}
