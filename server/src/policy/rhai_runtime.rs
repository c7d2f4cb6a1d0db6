//! The rhai runtime: one sandboxed engine, an AST compiled once per policy
//! version, and the bridge between the hook records and rhai values.
//!
//! The sandbox: `Engine::new_raw` plus only the packages policies need (no
//! file `import` — the crate is built with `no_module` —, no `sleep`, no
//! clock: the language-core package is left out and `no_time` is on; `eval`
//! is disabled); `print`/`debug` go to tracing; limits on operations, call
//! depth, expression depth, string, array and map sizes; a wall-clock
//! deadline checked from `on_progress`. Numbers are integers or `Decimal`
//! (the crate is built with `decimal` + `no_float`, so `0.10` is a decimal),
//! so a script never computes money in floating point.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{
    CallFnOptions, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Module, Position, Scope,
    AST,
};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::hooks::{
    AfterOutput, AssignInput, AssignOutput, BonusInput, BonusLine, BonusOutput, CadenceInput,
    CadenceOutput, GuardVerdict, Hook, TierInput, TierOutput, TransitionInput,
};
use super::script_input;
use super::{Executable, Limits, PolicyError, TestFailure};

thread_local! {
    /// The deadline of the call running on this thread, checked by `on_progress`.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// How often (in operations) the deadline is checked: reading the clock on
/// every operation would cost more than the operations themselves.
const DEADLINE_CHECK_EVERY: u64 = 1024;

/// The shared, sandboxed rhai engine.
#[derive(Clone)]
pub struct RhaiHost {
    /// The engine (immutable after construction, shared by every call).
    engine: Arc<Engine>,
    /// The same engine under [`Limits::bulk`], for whole-branch hooks
    /// (rhai's size and operation caps are the engine's, not the call's).
    bulk: Arc<Engine>,
    /// The limits it was built with.
    limits: Limits,
}

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

fn runtime_error(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

fn parse_time(s: &str) -> RhaiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| runtime_error(format!("`{s}` is not an RFC 3339 time")))
}

fn parse_date(s: &str) -> RhaiResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| runtime_error(format!("`{s}` is not a YYYY-MM-DD date")))
}

/// Registers the helpers scripts get: decimals, dates and test assertions.
fn register_helpers(engine: &mut Engine) {
    // `list.contains(text)` and `text in list`, compared natively: the
    // package's generic version calls `==` through the engine for every
    // element, which made it the most expensive line of a typical guard.
    // Same answers: a string equals a string, or a char equal to it.
    engine.register_fn(
        "contains",
        |list: &mut rhai::Array, text: ImmutableString| {
            list.iter().any(|d| {
                d.read_lock::<ImmutableString>().map_or_else(
                    || d.as_char().is_ok_and(|c| text.chars().eq([c])),
                    |s| *s == text,
                )
            })
        },
    );
    engine.register_fn("dec", |s: ImmutableString| -> RhaiResult<Decimal> {
        crate::domain::money::parse_decimal(&s).map_err(runtime_error)
    });
    engine.register_fn("dec", |i: rhai::INT| Decimal::from(i));
    engine.register_fn("dec", |d: Decimal| d);
    engine.register_fn(
        "round_money",
        |d: Decimal, places: rhai::INT| -> RhaiResult<Decimal> {
            let places =
                u32::try_from(places).map_err(|_| runtime_error("places must be 0 to 28"))?;
            Ok(d.round_dp_with_strategy(
                places.min(28),
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            ))
        },
    );
    engine.register_fn("money", |d: Decimal| d.normalize().to_string());
    engine.register_fn(
        "days_between",
        |a: ImmutableString, b: ImmutableString| -> RhaiResult<rhai::INT> {
            let (a, b) = (parse_time(&a)?, parse_time(&b)?);
            Ok((b - a).num_days())
        },
    );
    engine.register_fn(
        "date_of",
        |ts: ImmutableString, tz: ImmutableString| -> RhaiResult<String> {
            let t = parse_time(&ts)?;
            let tz: chrono_tz::Tz = tz
                .parse()
                .map_err(|_| runtime_error(format!("`{tz}` is not a time zone")))?;
            Ok(t.with_timezone(&tz).date_naive().to_string())
        },
    );
    engine.register_fn(
        "add_days",
        |d: ImmutableString, n: rhai::INT| -> RhaiResult<String> {
            let d = parse_date(&d)?;
            d.checked_add_signed(chrono::Duration::days(n))
                .map(|d| d.to_string())
                .ok_or_else(|| runtime_error("date out of range"))
        },
    );
    engine.register_fn(
        "add_months",
        |d: ImmutableString, n: rhai::INT| -> RhaiResult<String> {
            let d = parse_date(&d)?;
            let m = Months::new(
                u32::try_from(n.unsigned_abs()).map_err(|_| runtime_error("too many months"))?,
            );
            let r = if n >= 0 {
                d.checked_add_months(m)
            } else {
                d.checked_sub_months(m)
            };
            r.map(|d| d.to_string())
                .ok_or_else(|| runtime_error("date out of range"))
        },
    );
    engine.register_fn(
        "days_between_dates",
        |a: ImmutableString, b: ImmutableString| -> RhaiResult<rhai::INT> {
            Ok((parse_date(&b)? - parse_date(&a)?).num_days())
        },
    );
    engine.register_fn("year_of", |d: ImmutableString| -> RhaiResult<rhai::INT> {
        Ok(rhai::INT::from(parse_date(&d)?.year()))
    });
    engine.register_fn(
        "assert",
        |ok: bool, msg: ImmutableString| -> RhaiResult<()> {
            if ok {
                Ok(())
            } else {
                Err(runtime_error(format!("assertion failed: {msg}")))
            }
        },
    );
    engine.register_fn("assert_eq", |a: Dynamic, b: Dynamic| -> RhaiResult<()> {
        let (ja, jb) = (to_json(&a).ok(), to_json(&b).ok());
        if ja.is_some() && ja == jb {
            Ok(())
        } else {
            Err(runtime_error(format!("assertion failed: {a:?} != {b:?}")))
        }
    });
}

impl RhaiHost {
    /// Builds the sandboxed engines with `limits` (and their bulk form).
    pub fn new(limits: Limits) -> Self {
        Self {
            engine: Arc::new(Self::engine(&limits)),
            bulk: Arc::new(Self::engine(&limits.bulk())),
            limits,
        }
    }

    fn engine(limits: &Limits) -> Engine {
        let mut engine = Engine::new_raw();
        // One module holding every package: a call resolves its function
        // with one lookup instead of one per package (resolution is redone
        // on every hook call, since each call starts with fresh caches).
        let mut packages = Module::new();
        for module in [
            ArithmeticPackage::new().as_shared_module(),
            LogicPackage::new().as_shared_module(),
            BasicStringPackage::new().as_shared_module(),
            MoreStringPackage::new().as_shared_module(),
            BasicIteratorPackage::new().as_shared_module(),
            BasicFnPackage::new().as_shared_module(),
            BasicArrayPackage::new().as_shared_module(),
            BasicMapPackage::new().as_shared_module(),
            BasicMathPackage::new().as_shared_module(),
        ] {
            packages.combine_flatten((*module).clone());
        }
        packages.build_index();
        engine.register_global_module(packages.into());
        register_helpers(&mut engine);
        script_input::register(&mut engine);
        engine.disable_symbol("eval");
        engine.set_strict_variables(true);
        engine.set_max_operations(limits.max_operations);
        engine.set_max_call_levels(limits.max_call_depth);
        engine.set_max_expr_depths(limits.max_expr_depth.0, limits.max_expr_depth.1);
        engine.set_max_string_size(limits.max_string_size);
        engine.set_max_array_size(limits.max_array_size);
        engine.set_max_map_size(limits.max_map_size);
        engine.on_print(|s| tracing::info!(target: "dealflow::policy::print", "{s}"));
        engine.on_debug(|s, src, pos| tracing::debug!(target: "dealflow::policy::debug", source = ?src, %pos, "{s}"));
        engine.on_progress(|ops| {
            if ops % DEADLINE_CHECK_EVERY != 0 {
                return None;
            }
            match DEADLINE.with(Cell::get) {
                Some(deadline) if Instant::now() > deadline => Some(Dynamic::from("deadline")),
                _ => None,
            }
        });
        engine
    }

    /// Compiles a script; checks its hooks and runs its example tests
    /// (functions named `test_*` without parameters).
    pub fn compile(&self, source: &str) -> Result<RhaiPolicy, PolicyError> {
        if source.len() > self.limits.max_upload_bytes {
            return Err(PolicyError::Resource(format!(
                "the script is {} bytes; the limit is {}",
                source.len(),
                self.limits.max_upload_bytes
            )));
        }
        let ast = self
            .engine
            .compile(source)
            .map_err(|e| PolicyError::Compile {
                message: e.to_string(),
                line: e.position().line(),
                column: e.position().position(),
            })?;
        let mut hooks = Vec::new();
        let mut tests = Vec::new();
        let mut declares_subjects = false;
        for f in ast.iter_functions() {
            if f.name == BONUS_SUBJECTS {
                if !f.params.is_empty() {
                    return Err(PolicyError::Interface(format!(
                        "`{BONUS_SUBJECTS}` takes no parameter (it declares the subjects `bonus` settles)"
                    )));
                }
                declares_subjects = true;
                continue;
            }
            if let Some(h) = Hook::ALL.iter().find(|h| h.name() == f.name) {
                if f.params.len() != 1 {
                    return Err(PolicyError::Interface(format!(
                        "`{}` must take exactly one parameter (the hook's input)",
                        f.name
                    )));
                }
                hooks.push(*h);
            } else if f.name.starts_with("test_") && f.params.is_empty() {
                tests.push(f.name.to_string());
            }
        }
        hooks.sort();
        hooks.dedup();
        if hooks.is_empty() {
            return Err(PolicyError::Interface(
                "the script defines no hook function (guard, after, tier, cadence, assign or bonus)".into(),
            ));
        }
        if declares_subjects && !hooks.contains(&Hook::Bonus) {
            return Err(PolicyError::Interface(format!(
                "`{BONUS_SUBJECTS}` is declared but there is no `bonus` hook"
            )));
        }
        let mut policy = RhaiPolicy {
            host: self.clone(),
            ast: Arc::new(ast),
            hooks,
            tests,
            bonus_subjects: None,
        };
        policy.run_tests()?;
        if declares_subjects {
            policy.bonus_subjects = Some(policy.declared_subjects()?);
        }
        Ok(policy)
    }
}

/// A compiled script.
pub struct RhaiPolicy {
    /// The engine it runs on.
    host: RhaiHost,
    /// The compiled script.
    ast: Arc<AST>,
    /// Hooks it defines.
    hooks: Vec<Hook>,
    /// Its example tests.
    tests: Vec<String>,
    /// The subject kinds its `bonus` hook settles, when it declares them.
    bonus_subjects: Option<Vec<String>>,
}

/// The optional function declaring which subjects a `bonus` hook settles:
/// `fn bonus_subjects() { ["deal"] }`.
const BONUS_SUBJECTS: &str = "bonus_subjects";

/// Restores the thread's deadline when a call ends, even by panic.
struct DeadlineGuard;

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}

impl RhaiPolicy {
    /// Names of the script's example tests.
    pub fn tests(&self) -> &[String] {
        &self.tests
    }

    /// Runs every example test; the first failure is the error, with the
    /// line and column where it failed, so an editor can point at it.
    pub fn run_tests(&self) -> Result<(), PolicyError> {
        let limits = &self.host.limits;
        for name in &self.tests {
            if let Err(e) = self.call_unmapped(&self.host.engine, name, Vec::new(), limits) {
                let at = failure_position(&e);
                return Err(PolicyError::TestFailed(Box::new(TestFailure {
                    name: name.clone(),
                    message: map_error(*e, limits).to_string(),
                    line: at.line(),
                    column: at.position(),
                })));
            }
        }
        Ok(())
    }

    /// What `bonus_subjects()` answers: a non-empty array of distinct
    /// `deal`, `customer`, `rep`.
    fn declared_subjects(&self) -> Result<Vec<String>, PolicyError> {
        let wrong = |why: String| {
            PolicyError::Interface(format!(
                "`{BONUS_SUBJECTS}()` must return a non-empty array of distinct \"deal\", \"customer\" or \"rep\": {why}"
            ))
        };
        let out = self.call_raw(
            &self.host.engine,
            BONUS_SUBJECTS,
            Vec::new(),
            &self.host.limits,
        )?;
        let list = out
            .read_lock::<rhai::Array>()
            .ok_or_else(|| wrong(format!("it returned a {}", out.type_name())))?;
        let mut kinds: Vec<String> = Vec::new();
        for item in list.iter() {
            let kind = item
                .read_lock::<ImmutableString>()
                .map(|s| s.to_string())
                .ok_or_else(|| wrong(format!("`{item}` is not a string")))?;
            if !["deal", "customer", "rep"].contains(&kind.as_str()) {
                return Err(wrong(format!("`{kind}` is no subject kind")));
            }
            if kinds.contains(&kind) {
                return Err(wrong(format!("`{kind}` twice")));
            }
            kinds.push(kind);
        }
        if kinds.is_empty() {
            return Err(wrong("it is empty".into()));
        }
        Ok(kinds)
    }

    fn call_raw(
        &self,
        engine: &Engine,
        name: &str,
        args: Vec<Dynamic>,
        limits: &Limits,
    ) -> Result<Dynamic, PolicyError> {
        self.call_unmapped(engine, name, args, limits)
            .map_err(|e| map_error(*e, limits))
    }

    /// [`Self::call_raw`] with rhai's own error (which knows positions).
    fn call_unmapped(
        &self,
        engine: &Engine,
        name: &str,
        args: Vec<Dynamic>,
        limits: &Limits,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let _guard = DeadlineGuard;
        DEADLINE.with(|d| d.set(Some(Instant::now() + limits.deadline)));
        let mut scope = Scope::new();
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        engine.call_fn_with_options::<Dynamic>(options, &mut scope, &self.ast, name, args)
    }

    /// Calls `hook` with a read-only view of `input`; the script's raw answer.
    fn call_dynamic<I: Send + Sync + 'static>(
        &self,
        hook: Hook,
        input: &Arc<I>,
        limits: &Limits,
    ) -> Result<Dynamic, PolicyError> {
        if !self.hooks.contains(&hook) {
            return Err(PolicyError::NotImplemented(hook.name()));
        }
        // Whole-branch hooks run under the bulk limits (the caller passes
        // `limits.bulk()` for them).
        let engine = if hook == Hook::Tier {
            &self.host.bulk
        } else {
            &self.host.engine
        };
        self.call_raw(
            engine,
            hook.name(),
            vec![script_input::view(Arc::clone(input))],
            limits,
        )
    }

    fn call<I: Send + Sync + 'static, O: DeserializeOwned>(
        &self,
        hook: Hook,
        input: &Arc<I>,
        limits: &Limits,
    ) -> Result<O, PolicyError> {
        decode(&self.call_dynamic(hook, input, limits)?)
    }
}

/// A hook's answer as its output type, through JSON (exact for decimals).
fn decode<O: DeserializeOwned>(out: &Dynamic) -> Result<O, PolicyError> {
    let json = to_json(out).map_err(PolicyError::BadOutput)?;
    serde_json::from_value(json).map_err(|e| PolicyError::BadOutput(e.to_string()))
}

/// A guard's answer read straight from its map: guards run on every move,
/// and the JSON round trip cost as much as a short script. Anything but the
/// plain shape (`allow` bool, `reason` string or `()`, `missing` strings)
/// returns `None` and takes [`decode`], which gives the same value or the
/// error message.
fn guard_verdict(out: &Dynamic) -> Option<GuardVerdict> {
    let text = |d: &Dynamic| d.read_lock::<ImmutableString>().map(|s| s.to_string());
    let map = out.read_lock::<Map>()?;
    let mut verdict = GuardVerdict::default();
    let mut has_allow = false;
    for (key, value) in map.iter() {
        match key.as_str() {
            "allow" => {
                verdict.allow = value.as_bool().ok()?;
                has_allow = true;
            }
            "reason" if value.is_unit() => verdict.reason = None,
            "reason" => verdict.reason = Some(text(value)?),
            "missing" => {
                verdict.missing = value
                    .read_lock::<rhai::Array>()?
                    .iter()
                    .map(text)
                    .collect::<Option<_>>()?;
            }
            _ => return None,
        }
    }
    has_allow.then_some(verdict)
}

/// A bonus answer read straight from its maps: a settlement calls `bonus`
/// once per subject, and most answers are `#{ lines: [] }`. Only the plain
/// shape (`rule` and `explanation` strings, `amount` a decimal, an integer
/// or a decimal string, `flag` a string or `()`); anything else returns
/// `None` and takes [`decode`], which gives the same value or the error.
fn bonus_output(out: &Dynamic) -> Option<BonusOutput> {
    let map = out.read_lock::<Map>()?;
    let mut output = BonusOutput::default();
    for (key, value) in map.iter() {
        if key.as_str() != "lines" {
            return None;
        }
        output.lines = value
            .read_lock::<rhai::Array>()?
            .iter()
            .map(bonus_line)
            .collect::<Option<_>>()?;
    }
    Some(output)
}

/// One line of [`bonus_output`].
fn bonus_line(line: &Dynamic) -> Option<BonusLine> {
    let text = |d: &Dynamic| d.read_lock::<ImmutableString>().map(|s| s.to_string());
    let map = line.read_lock::<Map>()?;
    let (mut rule, mut amount, mut explanation, mut flag) = (None, None, None, None);
    for (key, value) in map.iter() {
        match key.as_str() {
            "rule" => rule = Some(text(value)?),
            "amount" => {
                amount = Some(if let Some(d) = value.read_lock::<Decimal>() {
                    d.normalize()
                } else if let Ok(i) = value.as_int() {
                    Decimal::from(i)
                } else {
                    crate::domain::money::parse_decimal(&text(value)?).ok()?
                })
            }
            "explanation" => explanation = Some(text(value)?),
            "flag" if value.is_unit() => flag = None,
            "flag" => flag = Some(text(value)?),
            _ => return None,
        }
    }
    Some(BonusLine {
        rule: rule?,
        amount: amount?,
        explanation: explanation?,
        flag,
    })
}

fn map_error(e: EvalAltResult, limits: &Limits) -> PolicyError {
    use EvalAltResult as E;
    match e {
        E::ErrorTooManyOperations(_) => {
            PolicyError::Budget(format!("{} operations", limits.max_operations))
        }
        E::ErrorTerminated(..) => PolicyError::Deadline(limits.deadline.as_millis() as u64),
        E::ErrorStackOverflow(_) => {
            PolicyError::Resource(format!("call depth over {}", limits.max_call_depth))
        }
        E::ErrorDataTooLarge(what, _) => PolicyError::Resource(format!("{what} too large")),
        E::ErrorTooManyVariables(_) => PolicyError::Resource("too many variables".into()),
        E::ErrorMismatchOutputType(want, got, _) => {
            PolicyError::BadOutput(format!("expected {want}, got {got}"))
        }
        E::ErrorInFunctionCall(_, _, inner, _) => map_error(*inner, limits),
        other => PolicyError::Failed(other.to_string()),
    }
}

/// Where an error happened: the innermost known position (inside the
/// function a test called, when the failure is there), else the call's.
fn failure_position(e: &EvalAltResult) -> Position {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, at) => {
            let inside = failure_position(inner);
            if inside.is_none() {
                *at
            } else {
                inside
            }
        }
        other => other.position(),
    }
}

/// rhai → JSON, exactly: decimals become decimal strings.
fn to_json(d: &Dynamic) -> Result<Value, String> {
    if d.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = d.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = d.as_int() {
        return Ok(Value::from(i));
    }
    if let Some(x) = d.clone().try_cast::<Decimal>() {
        return Ok(Value::String(x.normalize().to_string()));
    }
    if d.is_string() {
        return Ok(Value::String(d.clone().into_string().unwrap_or_default()));
    }
    if d.is_char() {
        return Ok(Value::String(
            d.as_char().map(String::from).unwrap_or_default(),
        ));
    }
    if d.is_array() {
        let a = d
            .clone()
            .into_array()
            .map_err(|t| format!("not an array: {t}"))?;
        return a
            .iter()
            .map(to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if d.is_map() {
        let m = d.clone().cast::<Map>();
        let mut o = serde_json::Map::new();
        for (k, v) in &m {
            o.insert(k.to_string(), to_json(v)?);
        }
        return Ok(Value::Object(o));
    }
    Err(format!(
        "a value of type `{}` cannot be returned",
        d.type_name()
    ))
}

impl Executable for RhaiPolicy {
    fn hooks(&self) -> &[Hook] {
        &self.hooks
    }

    fn tests(&self) -> Vec<String> {
        self.tests.clone()
    }

    fn bonus_subjects(&self) -> Option<&[String]> {
        self.bonus_subjects.as_deref()
    }

    fn guard(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<GuardVerdict, PolicyError> {
        let out = self.call_dynamic(Hook::Guard, input, limits)?;
        let v = match guard_verdict(&out) {
            Some(v) => v,
            None => decode(&out)?,
        };
        if !v.allow && v.reason.as_deref().is_none_or(str::is_empty) {
            return Err(PolicyError::BadOutput(
                "a rejection must give a `reason`".into(),
            ));
        }
        Ok(v)
    }

    fn after(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<AfterOutput, PolicyError> {
        self.call(Hook::After, input, limits)
    }

    fn tier(&self, input: &Arc<TierInput>, limits: &Limits) -> Result<TierOutput, PolicyError> {
        self.call(Hook::Tier, input, limits)
    }

    fn cadence(
        &self,
        input: &Arc<CadenceInput>,
        limits: &Limits,
    ) -> Result<CadenceOutput, PolicyError> {
        self.call(Hook::Cadence, input, limits)
    }

    fn assign(
        &self,
        input: &Arc<AssignInput>,
        limits: &Limits,
    ) -> Result<AssignOutput, PolicyError> {
        self.call(Hook::Assign, input, limits)
    }

    fn bonus(&self, input: &Arc<BonusInput>, limits: &Limits) -> Result<BonusOutput, PolicyError> {
        let out = self.call_dynamic(Hook::Bonus, input, limits)?;
        match bonus_output(&out) {
            Some(o) => Ok(o),
            None => decode(&out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::hooks::{ActorInfo, BranchInfo, CustomerInfo, DealInfo};
    use std::time::Duration;

    fn host() -> RhaiHost {
        RhaiHost::new(Limits::default())
    }

    fn input(to: &str) -> Arc<TransitionInput> {
        Arc::new(TransitionInput {
            branch: BranchInfo {
                id: "sh".into(),
                timezone: "Asia/Shanghai".into(),
            },
            deal: DealInfo {
                id: "deal_1".into(),
                title: "Fleet".into(),
                owner: "li".into(),
                currency: "CNY".into(),
                needs: vec![],
                prepayment_ratio: None,
                opened_at: "2026-03-01T08:00:00.000Z".into(),
                stage: "visit".into(),
                stages_passed: vec!["lead".into(), "qualify".into(), "visit".into()],
                signed_at: None,
                lines: vec![],
                amount_total: Decimal::new(1_000_001, 2),
                cost_total: Decimal::ZERO,
                attributes: Default::default(),
            },
            customer: CustomerInfo {
                id: "cus_1".into(),
                name: "ACME".into(),
                segment: "enterprise".into(),
                source: "assigned".into(),
                tier: "A".into(),
                owner: None,
                referred_by: None,
                last_contact_at: None,
            },
            records: vec![],
            from: "visit".into(),
            to: to.into(),
            to_kind: "open".into(),
            at: "2026-03-05T08:00:00.000Z".into(),
            actor: ActorInfo {
                user: "li".into(),
                role: "rep".into(),
            },
        })
    }

    #[test]
    fn default_policies_compile_and_pass_their_tests() {
        for (name, src) in [
            (
                "quote-late",
                include_str!("../../../policies/quote-late.rhai"),
            ),
            (
                "after-sign",
                include_str!("../../../policies/after-sign.rhai"),
            ),
            (
                "pareto-tiering",
                include_str!("../../../policies/pareto-tiering.rhai"),
            ),
            (
                "visit-cadence",
                include_str!("../../../policies/visit-cadence.rhai"),
            ),
        ] {
            let p = host()
                .compile(src)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!p.tests().is_empty(), "{name} carries tests");
        }
    }

    #[test]
    fn decimals_reach_scripts_as_decimals_and_come_back_exact() {
        let p = host()
            .compile(r#"fn guard(i) { #{ allow: i.deal.amount_total == 10000.01, reason: `${i.deal.amount_total + 0.1}` } }"#)
            .unwrap();
        let v = p.guard(&input("quote"), &Limits::default()).unwrap();
        assert!(v.allow);
        assert_eq!(v.reason.as_deref(), Some("10000.11"));
    }

    #[test]
    fn quote_late_guard_lists_what_is_missing() {
        let p = host()
            .compile(include_str!("../../../policies/quote-late.rhai"))
            .unwrap();
        let v = p.guard(&input("quote"), &Limits::default()).unwrap();
        assert!(!v.allow);
        assert_eq!(v.missing.len(), 2, "{v:?}");
    }

    #[test]
    fn compile_errors_carry_line_and_column() {
        match host().compile("fn guard(i) {\n  let x = ;\n}") {
            Err(PolicyError::Compile { line, column, .. }) => {
                assert_eq!(line, Some(2));
                assert!(column.is_some());
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_script_without_hooks_or_with_a_failing_test_is_refused() {
        assert!(matches!(
            host().compile("fn helper(x) { x }"),
            Err(PolicyError::Interface(_))
        ));
        let failing =
            "fn guard(i) { #{ allow: true } }\nfn test_fails() { assert(false, \"boom\"); }";
        assert!(matches!(
            host().compile(failing),
            Err(PolicyError::TestFailed(_))
        ));
    }

    #[test]
    fn a_failing_test_names_the_line_where_it_failed() {
        // An assertion in the test itself: its line.
        let assertion = "fn guard(i) { #{ allow: true } }\n\nfn test_a() {\n  let x = 1;\n  assert(x == 2, \"x\");\n}";
        match host().compile(assertion) {
            Err(PolicyError::TestFailed(f)) => {
                assert_eq!(f.name, "test_a");
                assert_eq!(f.line, Some(5), "{}", f.message);
                assert_eq!(f.column, Some(3), "{}", f.message);
                assert!(f.message.contains("assertion failed: x"), "{}", f.message);
            }
            other => panic!("{:?}", other.err()),
        }
        // A throw inside the hook a test calls: the line inside the hook.
        let inner = "fn guard(i) {\n  if i.x > 1 {\n    throw \"too big\";\n  }\n  #{ allow: true }\n}\nfn test_b() { guard(#{ x: 5 }); }";
        match host().compile(inner) {
            Err(PolicyError::TestFailed(f)) => assert_eq!(f.line, Some(3)),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_bonus_rule_may_declare_the_subjects_it_settles() {
        let bonus = "fn bonus(i) { #{ lines: [] } }";
        let declared =
            |decl: &str| host().compile(&format!("{bonus}\nfn bonus_subjects() {{ {decl} }}"));
        let p = declared(r#"["customer", "rep"]"#).unwrap();
        assert_eq!(
            p.bonus_subjects(),
            Some(&["customer".to_string(), "rep".to_string()][..])
        );
        assert!(host().compile(bonus).unwrap().bonus_subjects().is_none());
        for (decl, why) in [
            ("[]", "it is empty"),
            (r#""deal""#, "it returned a string"),
            (r#"["deal", "deal"]"#, "`deal` twice"),
            (r#"["deals"]"#, "`deals` is no subject kind"),
            ("[1]", "`1` is not a string"),
        ] {
            match declared(decl) {
                Err(PolicyError::Interface(m)) => assert!(m.contains(why), "{decl}: {m}"),
                other => panic!("{decl}: {:?}", other.map(|p| p.bonus_subjects)),
            }
        }
        // A throwing declaration is the script's error; one without a
        // `bonus` hook declares nothing it could use.
        assert!(declared(r#"throw "no""#).is_err());
        match host().compile(&format!("{bonus}\nfn bonus_subjects(x) {{ [\"deal\"] }}")) {
            Err(PolicyError::Interface(m)) => assert!(m.contains("takes no parameter"), "{m}"),
            other => panic!("{:?}", other.map(|p| p.bonus_subjects)),
        }
        match host().compile(r#"fn guard(i) { #{ allow: true } } fn bonus_subjects() { ["deal"] }"#)
        {
            Err(PolicyError::Interface(m)) => assert!(m.contains("no `bonus` hook"), "{m}"),
            other => panic!("{:?}", other.map(|p| p.bonus_subjects)),
        }
    }

    #[test]
    fn the_sandbox_has_no_sleep_eval_or_import() {
        for src in [
            "fn guard(i) { sleep(10); #{ allow: true } }",
            "fn guard(i) { eval(\"1\"); #{ allow: true } }",
        ] {
            let res = host()
                .compile(src)
                .and_then(|p| p.guard(&input("quote"), &Limits::default()));
            assert!(res.is_err(), "{src} must fail");
        }
        assert!(host()
            .compile("import \"x\" as y; fn guard(i) { #{ allow: true } }")
            .is_err());
    }

    #[test]
    fn an_infinite_loop_hits_the_operation_budget() {
        let p = host().compile("fn guard(i) { loop { } }").unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &Limits::default()),
            Err(PolicyError::Budget(_))
        ));
    }

    #[test]
    fn a_slow_script_hits_the_deadline() {
        let limits = Limits {
            max_operations: u64::MAX / 2,
            deadline: Duration::from_millis(20),
            ..Limits::default()
        };
        let h = RhaiHost::new(limits.clone());
        let p = h.compile("fn guard(i) { loop { } }").unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &limits),
            Err(PolicyError::Deadline(20))
        ));
    }

    #[test]
    fn unbounded_recursion_and_memory_bombs_hit_resource_limits() {
        let p = host()
            .compile("fn f(n) { f(n + 1) }\nfn guard(i) { f(0) }")
            .unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &Limits::default()),
            Err(PolicyError::Resource(_))
        ));
        let p = host()
            .compile("fn guard(i) { let s = \"xx\"; loop { s += s; } }")
            .unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &Limits::default()),
            Err(PolicyError::Resource(_))
        ));
        let p = host()
            .compile("fn guard(i) { let a = []; loop { a.push(1); } }")
            .unwrap();
        let res = p.guard(&input("quote"), &Limits::default());
        // Whichever limit trips first (array size, operations or the clock
        // in a slow debug build), the call is contained.
        assert!(
            matches!(
                res,
                Err(PolicyError::Resource(_) | PolicyError::Budget(_) | PolicyError::Deadline(_))
            ),
            "{res:?}"
        );
    }

    #[test]
    fn throws_and_wrong_shapes_are_reported() {
        let p = host().compile("fn guard(i) { throw \"nope\"; }").unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &Limits::default()),
            Err(PolicyError::Failed(_))
        ));
        let p = host().compile("fn guard(i) { 42 }").unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &Limits::default()),
            Err(PolicyError::BadOutput(_))
        ));
        let p = host().compile("fn guard(i) { #{ allow: false } }").unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &Limits::default()),
            Err(PolicyError::BadOutput(_))
        ));
        let p = host()
            .compile("fn guard(i) { #{ allow: true, extra: 1 } }")
            .unwrap();
        assert!(matches!(
            p.guard(&input("quote"), &Limits::default()),
            Err(PolicyError::BadOutput(_))
        ));
    }

    #[test]
    fn an_enormous_script_is_refused() {
        let limits = Limits::default();
        let src = format!(
            "fn guard(i) {{ #{{ allow: true }} }}\n//{}",
            "x".repeat(limits.max_upload_bytes)
        );
        assert!(matches!(
            host().compile(&src),
            Err(PolicyError::Resource(_))
        ));
    }

    #[test]
    fn inputs_are_read_only() {
        let p = host()
            .compile("fn guard(i) { i.deal.stage = \"x\"; #{ allow: true } }")
            .unwrap();
        let inp = input("quote");
        // Writing to an input is an error the author sees at once, not a
        // silent no-op.
        match p.guard(&inp, &Limits::default()) {
            Err(PolicyError::Failed(m)) => assert!(m.contains("No writable property"), "{m}"),
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(inp.deal.stage, "visit");
    }

    #[test]
    fn methods_on_input_fields_work_and_mutating_ones_are_refused() {
        let inp = input("quote");
        let reads = host()
            .compile(
                r#"fn guard(i) {
                    let read = [i.deal.needs.is_empty(), i.deal.stages_passed.contains("qualify"),
                                i.records.len(), i.deal.lines.len(), i.deal.attributes.len(),
                                i.deal.amount_total.abs(), i.deal.id.len()];
                    #{ allow: read.len() == 7, reason: "fields unreadable" }
                }"#,
            )
            .unwrap();
        assert!(reads.guard(&inp, &Limits::default()).unwrap().allow);
        for (script, field) in [
            ("i.deal.needs.push(\"x\")", "needs"),
            ("i.deal.stages_passed.push(\"sign\")", "stages_passed"),
            ("i.records.push(1)", "records"),
            ("i.deal.attributes.approved = \"yes\"", "attributes"),
            ("i.deal.id.clear()", "id"),
        ] {
            let p = host()
                .compile(&format!("fn guard(i) {{ {script}; #{{ allow: true }} }}"))
                .unwrap();
            match p.guard(&inp, &Limits::default()) {
                Err(PolicyError::Failed(m)) => {
                    assert!(
                        m.contains(&format!("No writable property `{field}`")),
                        "{script}: {m}"
                    )
                }
                other => panic!("{script}: expected a failure, got {other:?}"),
            }
        }
        assert!(inp.deal.needs.is_empty() && inp.records.is_empty());
        assert!(inp.deal.attributes.is_empty());
    }

    #[test]
    fn guard_answers_read_directly_equal_the_json_decoding() {
        let engine = Engine::new();
        // (answer, whether the direct read takes it)
        for (answer, direct) in [
            (r#"#{ allow: true }"#, true),
            (
                r#"#{ allow: false, reason: "no", missing: ["a", "b"] }"#,
                true,
            ),
            (r#"#{ allow: true, reason: () }"#, true),
            (r#"#{ allow: false, reason: 'c' }"#, false),
            (r#"#{ allow: 1 }"#, false),
            (r#"#{ reason: "x" }"#, false),
            (r#"#{ allow: true, missing: [1] }"#, false),
            (r#"#{ allow: true, other: 1 }"#, false),
            (r#"[true]"#, false),
        ] {
            let d: Dynamic = engine.eval(answer).unwrap();
            let fast = guard_verdict(&d);
            assert_eq!(fast.is_some(), direct, "{answer}");
            if let Some(fast) = fast {
                let slow = decode::<GuardVerdict>(&d).unwrap();
                assert_eq!(
                    (fast.allow, fast.reason, fast.missing),
                    (slow.allow, slow.reason, slow.missing),
                    "{answer}"
                );
            }
        }
    }

    #[test]
    fn native_string_contains_answers_like_the_generic_one() {
        let generic = Engine::new();
        let ours = host();
        for case in [
            r#"["a", "b"].contains("b")"#,
            r#"["a", "b"].contains("c")"#,
            r#"[1, "x"].contains("x")"#,
            r#"['x', 'y'].contains("x")"#,
            r#"['x'].contains("xy")"#,
            r#"[].contains("")"#,
            r#""b" in ["a", "b"]"#,
            r#"[1, 2].contains(2)"#,
        ] {
            let want: bool = generic.eval(case).unwrap();
            let script = format!("fn guard(i) {{ #{{ allow: {case}, reason: \"no\" }} }}");
            let got = ours
                .compile(&script)
                .unwrap()
                .guard(&input("quote"), &Limits::default())
                .unwrap()
                .allow;
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn bonus_answers_read_from_their_maps_equal_the_json_reading() {
        let h = host();
        let mut fast = 0;
        for case in [
            "#{ lines: [] }",
            "#{}",
            r#"#{ lines: [#{ rule: "r", amount: dec("1.50"), explanation: "x" }] }"#,
            r#"#{ lines: [#{ rule: "r", amount: dec(-1000), explanation: "x", flag: () }] }"#,
            r#"#{ lines: [#{ rule: "r", amount: 300, explanation: "x", flag: "replan" }] }"#,
            r#"#{ lines: [#{ rule: "r", amount: "12.340", explanation: "" }, #{ rule: "s", amount: dec("0.000"), explanation: "y" }] }"#,
            // (scripts have no floats: 1.5 is a decimal)
            r#"#{ lines: [#{ rule: "r", amount: 1.5, explanation: "x" }] }"#,
            // Not the plain shape: the JSON reading decides.
            r#"#{ lines: [#{ rule: "r", amount: "1e3", explanation: "x" }] }"#,
            r#"#{ lines: [#{ rule: "r", explanation: "x" }] }"#,
            r#"#{ lines: [#{ rule: 7, amount: 1, explanation: "x" }] }"#,
            r#"#{ lines: [#{ rule: "r", amount: 1, explanation: "x", extra: 1 }] }"#,
            r#"#{ lines: [], more: 1 }"#,
            r#"#{ lines: "none" }"#,
            "[]",
            "()",
        ] {
            let out: Dynamic = h.engine.eval(case).unwrap();
            let slow: Result<BonusOutput, PolicyError> = decode(&out);
            // Other shapes take the JSON reading itself.
            if let Some(o) = bonus_output(&out) {
                fast += 1;
                let slow = slow.unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(
                    serde_json::to_value(&o).unwrap(),
                    serde_json::to_value(&slow).unwrap(),
                    "{case}"
                );
                for (a, b) in o.lines.iter().zip(&slow.lines) {
                    assert_eq!(a.amount.serialize(), b.amount.serialize(), "{case}");
                }
            }
        }
        assert_eq!(fast, 7);
    }
}
