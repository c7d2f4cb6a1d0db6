//! The live policy set: which compiled version of each policy is active.
//! A request takes one snapshot at its start and is decided wholly by it;
//! activation swaps in a new snapshot atomically, so requests that start
//! after `activate` returns see the new version and none sees half of each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::hooks::Hook;
use super::Executable;

/// Where a policy applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every branch (the HQ default).
    Global,
    /// One branch; overrides global policies for the hooks it implements.
    Branch(String),
}

impl Scope {
    /// Parses `global` or `branch:<id>`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "global" => Some(Scope::Global),
            _ => s
                .strip_prefix("branch:")
                .filter(|b| crate::domain::ids::is_slug(b))
                .map(|b| Scope::Branch(b.to_string())),
        }
    }

    /// The branch, for branch scopes.
    pub fn branch(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Branch(b) => Some(b),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Branch(b) => write!(f, "branch:{b}"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not `global` or `branch:<id>`"))
        })
    }
}

impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        String::schema()
    }
}

impl ToSchema for Scope {}

/// The language a policy version is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// A rhai script.
    Rhai,
    /// A WebAssembly component (or core module with an embedded WIT world).
    Wasm,
}

/// An active policy version, compiled.
pub struct LivePolicy {
    /// Policy name.
    pub name: String,
    /// Active version.
    pub version: u64,
    /// SHA-256 of the version's source or module.
    pub sha256: String,
    /// Scope.
    pub scope: Scope,
    /// Runtime.
    pub runtime: Runtime,
    /// The parameters it runs with (already applied to `exec`).
    pub config: super::config::PolicyConfig,
    /// The compiled version.
    pub exec: Arc<dyn Executable>,
    /// Set once a call of this version overran [`INLINE_BUDGET`]: from then
    /// on its calls run on the blocking pool, never on an async worker.
    pub slow: AtomicBool,
}

/// How long a hook call may take and still run on the async worker that
/// asked for it. Sending every call to the blocking pool cost about ten
/// points of throughput on transitions (BENCHMARKS.md); a version whose call
/// ever took longer than this goes there for good, so a hostile or heavy
/// policy holds a worker once, for at most its deadline. Measured in the
/// calling thread's CPU time, not wall-clock time: policies do no I/O, so
/// their CPU time is their cost, while wall-clock time also counts the
/// moments a busy machine preempted the thread. With wall-clock time, a
/// loaded 2-core server sent well-behaved policies (5–50 µs per call) to the
/// pool for good after one such preemption.
pub const INLINE_BUDGET: Duration = Duration::from_millis(10);

/// CPU time the calling thread has used so far (wall-clock time where the
/// platform has no per-thread clock).
fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a
        // constant every unix libc defines.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return Duration::new(
                u64::try_from(ts.tv_sec).unwrap_or(0),
                u32::try_from(ts.tv_nsec).unwrap_or(0),
            );
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

impl LivePolicy {
    /// Runs one of its hook calls, marking the version slow when the call
    /// overran [`INLINE_BUDGET`].
    pub fn timed<R>(&self, call: impl FnOnce() -> R) -> R {
        let started = thread_cpu_time();
        let out = call();
        self.record_call(thread_cpu_time().saturating_sub(started));
        out
    }

    /// Notes how long one call took: an overrun marks the version slow.
    fn record_call(&self, took: Duration) {
        if took > INLINE_BUDGET {
            self.slow.store(true, Ordering::Relaxed);
        }
    }

    /// Whether its calls may run inline (no call has overrun yet).
    pub fn runs_inline(&self) -> bool {
        !self.slow.load(Ordering::Relaxed)
    }

    /// Whether it implements `hook`.
    pub fn implements(&self, hook: Hook) -> bool {
        self.exec.hooks().contains(&hook)
    }
}

/// One consistent set of active policies.
#[derive(Default, Clone)]
pub struct LiveSet {
    /// Active policies, ordered by name.
    policies: Vec<Arc<LivePolicy>>,
}

impl LiveSet {
    /// The policies that decide `hook` for `branch`: the branch's own active
    /// policies implementing it when there are any, the global ones otherwise.
    pub fn effective(&self, branch: &str, hook: Hook) -> (Vec<Arc<LivePolicy>>, bool) {
        let own: Vec<_> = self
            .policies
            .iter()
            .filter(|p| p.scope.branch() == Some(branch) && p.implements(hook))
            .cloned()
            .collect();
        if !own.is_empty() {
            return (own, true);
        }
        let global = self
            .policies
            .iter()
            .filter(|p| p.scope == Scope::Global && p.implements(hook))
            .cloned()
            .collect();
        (global, false)
    }

    /// The one policy that decides `hook` for `branch` where one decides
    /// (cadence, tier, assignment): the first of [`LiveSet::effective`],
    /// found without collecting the lists.
    pub fn deciding(&self, branch: &str, hook: Hook) -> Option<Arc<LivePolicy>> {
        let implementing = || self.policies.iter().filter(|p| p.implements(hook));
        implementing()
            .find(|p| p.scope.branch() == Some(branch))
            .or_else(|| implementing().find(|p| p.scope == Scope::Global))
            .cloned()
    }

    /// The active version of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Arc<LivePolicy>> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// Every active policy.
    pub fn all(&self) -> &[Arc<LivePolicy>] {
        &self.policies
    }
}

/// The swappable live set.
#[derive(Default)]
pub struct Live {
    /// The current snapshot.
    current: RwLock<Arc<LiveSet>>,
}

impl Live {
    /// The current snapshot (one `Arc` clone).
    pub fn snapshot(&self) -> Arc<LiveSet> {
        Arc::clone(&self.current.read())
    }

    /// Makes `policy` the active version of its name (or deactivates `name`).
    pub fn set(&self, name: &str, policy: Option<Arc<LivePolicy>>) {
        let mut cur = self.current.write();
        let mut next = LiveSet::clone(&cur);
        next.policies.retain(|p| p.name != name);
        if let Some(p) = policy {
            next.policies.push(p);
            next.policies.sort_by(|a, b| a.name.cmp(&b.name));
        }
        *cur = Arc::new(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rhai::RhaiHost;
    use crate::policy::Limits;

    fn policy() -> LivePolicy {
        let exec = RhaiHost::new(Limits::default())
            .compile("fn guard(i) { #{ allow: true } }")
            .unwrap();
        LivePolicy {
            name: "p".into(),
            version: 1,
            sha256: String::new(),
            scope: Scope::Global,
            runtime: Runtime::Rhai,
            config: Default::default(),
            exec: Arc::new(exec),
            slow: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_call_over_the_inline_budget_sends_the_version_to_the_pool_for_good() {
        let p = policy();
        assert_eq!(p.timed(|| 7), 7, "a timed call returns its answer");
        p.record_call(INLINE_BUDGET);
        assert!(p.runs_inline(), "a call within the budget keeps it inline");
        p.record_call(INLINE_BUDGET + Duration::from_micros(1));
        assert!(!p.runs_inline(), "an overrun moves it to the pool");
        p.record_call(Duration::ZERO);
        assert!(!p.runs_inline(), "and it stays there");
    }

    #[test]
    fn a_call_that_waited_without_working_stays_inline() {
        // What a preempted call looks like: wall-clock time passes, the
        // thread's CPU time barely moves.
        let p = policy();
        p.timed(|| std::thread::sleep(INLINE_BUDGET * 3));
        assert!(p.runs_inline());
    }

    #[test]
    fn a_call_that_works_past_the_budget_goes_to_the_pool() {
        let p = policy();
        p.timed(|| {
            let started = thread_cpu_time();
            let mut x = 0u64;
            while thread_cpu_time().saturating_sub(started) <= INLINE_BUDGET {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        assert!(!p.runs_inline());
    }
}
