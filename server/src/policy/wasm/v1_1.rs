//! Interface 1.1.0 (`plugin-sdk/wit/policy.wit`): closed sets as enums,
//! the `bonus-subjects` export, and the host's two imports: `config` (the
//! parameters of the call's activation, [`crate::policy::config`]) and
//! `log` (to tracing, rate-limited per policy version).

pub use super::bindings::v1_1::types as wit;
use super::bindings::v1_1::PolicyImports;
pub use super::bindings::v1_1::PolicyPre;
use super::CallState;
use crate::policy::PolicyError;

// The same sources as the other version's: compiled here against this
// version's bindings (`wit`, `PolicyPre`) and closed-set conversions, so
// both versions share one definition of the conversions and the calls.
#[allow(clippy::duplicate_mod)]
#[path = "convert.rs"]
pub(super) mod convert;
#[allow(clippy::duplicate_mod)]
#[path = "plugin.rs"]
pub(super) mod plugin;

/// What a plugin declares about itself.
pub(super) mod ask {
    use wasmtime::component::Instance;
    use wasmtime::Store;

    use super::super::bindings::v1_1::Policy;
    use super::convert::hook_from_wit;
    use super::subject_text;
    use crate::policy::hooks::Hook;
    use crate::policy::wasm::CallState;

    /// Its hooks and the subjects its `bonus` hook settles (an empty list:
    /// every subject).
    pub(crate) fn declared(
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> wasmtime::Result<(Vec<Hook>, Option<Vec<String>>)> {
        let policy = Policy::new(&mut *store, instance)?;
        let hooks = policy.call_hooks(&mut *store)?;
        let subjects = policy.call_bonus_subjects(&mut *store)?;
        let subjects = (!subjects.is_empty()).then(|| {
            subjects
                .into_iter()
                .map(|s| subject_text(s).into())
                .collect()
        });
        Ok((hooks.into_iter().map(hook_from_wit).collect(), subjects))
    }
}

impl wit::Host for CallState {}

impl PolicyImports for CallState {
    fn config(&mut self, key: String) -> Option<String> {
        crate::policy::config::current(&key)
    }

    fn log(&mut self, level: wit::LogLevel, message: String) {
        let level = match level {
            wit::LogLevel::Debug => tracing::Level::DEBUG,
            wit::LogLevel::Info => tracing::Level::INFO,
            wit::LogLevel::Warn => tracing::Level::WARN,
            wit::LogLevel::Error => tracing::Level::ERROR,
        };
        self.log.write(level, message);
    }
}

/// `value` of the closed set `what`, by its name in `names`.
fn closed<T: Copy>(what: &str, value: &str, names: &[(&str, T)]) -> Result<T, PolicyError> {
    names
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| PolicyError::Failed(format!("`{value}` is no {what} of interface 1.1")))
}

fn stage_kind(s: &str) -> Result<wit::StageKind, PolicyError> {
    use wit::StageKind as K;
    closed(
        "stage kind",
        s,
        &[("open", K::Open), ("won", K::Won), ("lost", K::Lost)],
    )
}

fn tier(s: &str) -> Result<wit::Tier, PolicyError> {
    use wit::Tier as T;
    closed("tier", s, &[("A", T::A), ("B", T::B), ("C", T::C)])
}

/// A tier the plugin answered, as the host writes it.
fn tier_text(t: wit::Tier) -> String {
    match t {
        wit::Tier::A => "A",
        wit::Tier::B => "B",
        wit::Tier::C => "C",
    }
    .into()
}

fn segment(s: &str) -> Result<wit::Segment, PolicyError> {
    use wit::Segment as S;
    closed(
        "segment",
        s,
        &[
            ("industrial", S::Industrial),
            ("government", S::Government),
            ("enterprise", S::Enterprise),
            ("individual", S::Individual),
        ],
    )
}

fn source(s: &str) -> Result<wit::Source, PolicyError> {
    use wit::Source as S;
    closed(
        "source",
        s,
        &[
            ("self_developed", S::SelfDeveloped),
            ("assigned", S::Assigned),
            ("referral", S::Referral),
        ],
    )
}

fn subject_kind(s: &str) -> Result<wit::SubjectKind, PolicyError> {
    use wit::SubjectKind as K;
    closed(
        "subject kind",
        s,
        &[
            ("deal", K::Deal),
            ("customer", K::Customer),
            ("rep", K::Rep),
        ],
    )
}

/// A subject kind as the host writes it.
fn subject_text(k: wit::SubjectKind) -> &'static str {
    match k {
        wit::SubjectKind::Deal => "deal",
        wit::SubjectKind::Customer => "customer",
        wit::SubjectKind::Rep => "rep",
    }
}

fn role(s: &str) -> Result<wit::Role, PolicyError> {
    use wit::Role as R;
    closed(
        "role",
        s,
        &[
            ("admin", R::Admin),
            ("manager", R::Manager),
            ("rep", R::Rep),
        ],
    )
}

fn record_kind(s: &str) -> Result<wit::RecordKind, PolicyError> {
    use wit::RecordKind as K;
    closed(
        "record kind",
        s,
        &[
            ("visit", K::Visit),
            ("call", K::Call),
            ("meeting", K::Meeting),
            ("message", K::Message),
        ],
    )
}
