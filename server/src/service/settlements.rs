//! Settlements: draft (run the bonus rules in force over a period; re-running
//! replaces the draft), approve (the branch's manager; announces the awards
//! and records every subject as paid, so none is paid twice), pay;
//! per-rep statements; and simulations of a candidate rule version.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::json;

use super::repo::{decode, encode, Source, Stored};
use super::rule_book::{Candidate, RuleBook};
use super::settlement_run::{settled_key, Computed, Settled};
use super::{events, now, Page, PageRequest, Progress, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::settlement::{
    rep_totals, LineChange, NewSettlement, RepComparison, Settlement, SettlementLine,
    SettlementStatus, SimulateRequest, Simulation, Statement, StatementLine,
};
use crate::incentive::Period;
use crate::store::{keys, Batch, StoreError};

/// Filters of `GET /v1/settlements`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SettlementFilter {
    /// Only this branch (required for non-admins: their own).
    pub branch: Option<String>,
    /// Only this period.
    #[param(schema_with = crate::domain::schema::period)]
    pub period: Option<String>,
    /// Page size.
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}

fn parse_period(text: &str) -> Result<Period, ServiceError> {
    Period::parse(text).map_err(|e| ServiceError::invalid("period", e))
}

fn wrong_state(s: &Settlement, wanted: SettlementStatus) -> ServiceError {
    let step = match wanted {
        SettlementStatus::Draft => "a draft settlement can be approved",
        SettlementStatus::Approved => "an approved settlement can be paid",
        SettlementStatus::Paid => "a paid settlement is final",
    };
    ServiceError::WrongState {
        code: "invalid_state",
        message: format!(
            "settlement {} is {}; only {step}",
            s.id,
            status_name(s.status)
        ),
    }
}

fn status_name(s: SettlementStatus) -> &'static str {
    match s {
        SettlementStatus::Draft => "draft",
        SettlementStatus::Approved => "approved",
        SettlementStatus::Paid => "paid",
    }
}

impl Services {
    /// Computes what the rules of `book` pay for `branch` and `period`,
    /// off the async workers.
    async fn compute(
        &self,
        branch: Branch,
        period: Period,
        book: RuleBook,
        progress: Option<Arc<Progress>>,
    ) -> Result<Computed, ServiceError> {
        let services = self.clone();
        self.policies
            .executor
            .run(move |limits| {
                services.compute_settlement(&branch, period, &book, limits, progress.as_deref())
            })
            .await
            .map_err(|e| ServiceError::PolicyFailed {
                policy: "runtime".into(),
                version: 0,
                hook: "bonus".into(),
                error: e,
            })?
    }

    /// Checks, before any work, what a settlement or a simulate of `period`
    /// for `branch` needs: the caller manages the branch, it exists, the
    /// period is one (a job started for it fails for nothing else of the
    /// request's making).
    pub fn check_settlement(
        &self,
        caller: &Principal,
        branch: &str,
        period: &str,
    ) -> Result<(), ServiceError> {
        self.settlement_branch(caller, branch)?;
        parse_period(period)?;
        Ok(())
    }

    fn settlement_branch(&self, caller: &Principal, branch: &str) -> Result<Branch, ServiceError> {
        caller.require_manager_of(branch)?;
        Ok(self.repo.fetch(keys::BRANCH, "branch", branch)?.value)
    }

    /// Runs the rules due in the period and stores the result as the
    /// period's draft (replacing an earlier draft).
    pub async fn create_settlement(
        &self,
        caller: &Principal,
        req: NewSettlement,
    ) -> Result<Settlement, ServiceError> {
        self.create_settlement_with(caller, req, None).await
    }

    /// [`Services::create_settlement`], reporting its progress (days of
    /// contracts and chunks of other subjects settled).
    pub async fn create_settlement_with(
        &self,
        caller: &Principal,
        req: NewSettlement,
        progress: Option<Arc<Progress>>,
    ) -> Result<Settlement, ServiceError> {
        let branch = self.settlement_branch(caller, &req.branch)?;
        let period = parse_period(&req.period)?;
        let book = self.rule_book(&branch.id, None)?;
        let computed = self.compute(branch.clone(), period, book, progress).await?;
        let label = period.to_string();
        let now = now();
        let settlement = Settlement {
            id: self.repo.new_id("stl")?,
            branch: branch.id.clone(),
            period: label.clone(),
            status: SettlementStatus::Draft,
            totals: rep_totals(&computed.lines),
            total: computed
                .lines
                .iter()
                .map(|l| l.amount)
                .sum::<Decimal>()
                .normalize(),
            lines: computed.lines,
            currency: "CNY".into(),
            already_settled: computed.already_settled,
            created_by: caller.user.clone(),
            created_at: now,
            approved_by: None,
            approved_at: None,
            paid_by: None,
            paid_at: None,
            version: 1,
        };
        let draft_key = keys::key(keys::SETTLEMENT_DRAFT, &[&branch.id, &label]);
        let mut batch = Batch::new();
        let old_draft = self.repo.store().get(&draft_key)?;
        batch.expect(draft_key.clone(), old_draft.as_deref());
        if let Some(old) = &old_draft {
            let old = String::from_utf8_lossy(old);
            batch.delete(keys::key(keys::SETTLEMENT, &[&old]));
            batch.delete(keys::key(
                keys::IX_SETTLEMENT_BRANCH,
                &[&branch.id, &label, &old],
            ));
        }
        batch.put(draft_key, settlement.id.as_bytes());
        batch.put(
            keys::key(keys::SETTLEMENT, &[&settlement.id]),
            encode(&settlement),
        );
        batch.put(
            keys::key(
                keys::IX_SETTLEMENT_BRANCH,
                &[&branch.id, &label, &settlement.id],
            ),
            settlement.id.as_bytes(),
        );
        events::add(
            &mut batch,
            EventKind::SettlementDrafted,
            ResourceRef::settlement(&settlement),
            &caller.user,
            json!({"settlement": settlement.id, "period": label, "total": settlement.total,
                   "lines": settlement.lines.len(), "replaces": old_draft.as_deref().map(String::from_utf8_lossy),
                   "by": caller.user}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
            other => other?,
        }
        Ok(settlement)
    }

    fn visible_settlement(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Stored<Settlement>, ServiceError> {
        let s: Stored<Settlement> = self.repo.fetch(keys::SETTLEMENT, "settlement", id)?;
        // Every rep's pay is on it: the branch's manager's to see (a rep
        // reads their own lines in their statement).
        caller.may_read(&ResourceRef::settlement(&s.value))?;
        Ok(s)
    }

    /// Settlement `id` for a lifecycle step by its branch's manager, when
    /// it is in `status`.
    fn settlement_step(
        &self,
        caller: &Principal,
        id: &str,
        status: SettlementStatus,
    ) -> Result<Stored<Settlement>, ServiceError> {
        let old = self.visible_settlement(caller, id)?;
        caller.require_manager_of(&old.value.branch)?;
        if old.value.status != status {
            return Err(wrong_state(&old.value, status));
        }
        Ok(old)
    }

    /// One settlement (managers of its branch; reps read their own lines
    /// in their statement).
    pub fn settlement(&self, caller: &Principal, id: &str) -> Result<Settlement, ServiceError> {
        Ok(self.visible_settlement(caller, id)?.value)
    }

    /// Settlements of the caller's branch (managers) or of any (admins).
    pub fn list_settlements(
        &self,
        caller: &Principal,
        filter: &SettlementFilter,
    ) -> Result<Page<Settlement>, ServiceError> {
        let branch = match (&filter.branch, &caller.branch) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(own)) if !caller.is_admin() => Some(own.clone()),
            (None, _) => None,
        };
        if let Some(b) = &branch {
            caller.require_manager_of(b)?;
        }
        let period = filter
            .period
            .as_deref()
            .map(parse_period)
            .transpose()?
            .map(|p| p.to_string());
        let page = PageRequest {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let source = match (&branch, &period) {
            (Some(b), Some(p)) => Source::Index {
                prefix: keys::prefix(keys::IX_SETTLEMENT_BRANCH, &[b, p]),
                tag: keys::SETTLEMENT,
            },
            (Some(b), None) => Source::Index {
                prefix: keys::prefix(keys::IX_SETTLEMENT_BRANCH, &[b]),
                tag: keys::SETTLEMENT,
            },
            (None, _) => Source::Primary(keys::prefix(keys::SETTLEMENT, &[])),
        };
        self.repo.list(source, &page, move |s: &Settlement| {
            period.as_ref().is_none_or(|p| &s.period == p)
        })
    }

    /// Draft → approved: the general manager's confirmation. Every line's
    /// subject is recorded as paid in the same batch, so a subject already
    /// in an approved settlement is never paid again (a draft that overlaps
    /// one approved since it was drafted is refused: re-run it).
    pub async fn approve_settlement(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Settlement, ServiceError> {
        let old = self.settlement_step(caller, id, SettlementStatus::Draft)?;
        let mut s = old.value.clone();
        let now = now();
        s.status = SettlementStatus::Approved;
        s.approved_by = Some(caller.user.clone());
        s.approved_at = Some(now);
        s.version += 1;
        let mut batch = Batch::new();
        let key = keys::key(keys::SETTLEMENT, &[id]);
        batch
            .expect(key.clone(), Some(&old.raw))
            .put(key, encode(&s));
        let draft_key = keys::key(keys::SETTLEMENT_DRAFT, &[&s.branch, &s.period]);
        batch
            .expect(draft_key.clone(), Some(id.as_bytes()))
            .delete(draft_key);
        let mut ledger: BTreeMap<Vec<u8>, (Option<Vec<u8>>, Settled)> = BTreeMap::new();
        for line in &s.lines {
            let k = settled_key(&s.branch, line);
            let (raw, current) = match ledger.remove(&k) {
                Some((raw, cur)) => (raw, Some(cur)),
                None => match self.repo.store().get(&k)? {
                    Some(raw) => {
                        let cur: Settled = decode(&k, &raw)?;
                        (Some(raw), Some(cur))
                    }
                    None => (None, None),
                },
            };
            let stale = match (&line.adjusts, &current) {
                (None, Some(c)) => Some(format!(
                    "{} {} is already settled under `{}` by {}",
                    line.subject_kind,
                    line.subject,
                    line.rule,
                    c.settlements.join(", ")
                )),
                (Some(a), Some(c)) if a.paid != c.paid => Some(format!(
                    "the true-up of {} {} assumed {} CNY paid, but {} CNY is",
                    line.subject_kind, line.subject, a.paid, c.paid
                )),
                (Some(_), None) => Some(format!(
                    "the true-up of {} {} refers to a payment that is not recorded",
                    line.subject_kind, line.subject
                )),
                _ => None,
            };
            if let Some(why) = stale {
                return Err(ServiceError::WrongState {
                    code: "stale_draft",
                    message: format!(
                        "{why}: another settlement was approved since this draft; re-run the draft"
                    ),
                });
            }
            let mut next = current.unwrap_or(Settled {
                settlements: Vec::new(),
                paid: Decimal::ZERO,
                line: line.clone(),
            });
            next.settlements.push(s.id.clone());
            next.paid = (next.paid + line.amount).normalize();
            next.line = line.clone();
            ledger.insert(k, (raw, next));
        }
        for (k, (raw, next)) in ledger {
            batch
                .expect(k.clone(), raw.as_deref())
                .put(k, encode(&next));
        }
        events::add(
            &mut batch,
            EventKind::SettlementApproved,
            ResourceRef::settlement(&s),
            &caller.user,
            json!({"settlement": s.id, "period": s.period, "total": s.total, "reps": s.totals.len(),
                   "approved_by": caller.user}),
        );
        // The award announcement HR sends out (docs/business-rules.md §5.1): one per
        // rep, about their statement, so each rep reads their own award
        // (and the branch's managers all of them).
        for t in &s.totals {
            events::add(
                &mut batch,
                EventKind::AwardAnnounced,
                ResourceRef::statement(&s.branch, &t.rep, &s.period),
                &caller.user,
                json!({"settlement": s.id, "period": s.period, "rep": t.rep, "total": t.total,
                       "currency": "CNY", "flags": t.flags, "approved_by": caller.user}),
            );
        }
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
            other => other?,
        }
        Ok(s)
    }

    /// Approved → paid.
    pub async fn pay_settlement(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Settlement, ServiceError> {
        let old = self.settlement_step(caller, id, SettlementStatus::Approved)?;
        let mut s = old.value.clone();
        s.status = SettlementStatus::Paid;
        s.paid_by = Some(caller.user.clone());
        s.paid_at = Some(now());
        s.version += 1;
        let key = keys::key(keys::SETTLEMENT, &[id]);
        let mut batch = Batch::new();
        batch
            .expect(key.clone(), Some(&old.raw))
            .put(key, encode(&s));
        events::add(
            &mut batch,
            EventKind::SettlementPaid,
            ResourceRef::settlement(&s),
            &caller.user,
            json!({"settlement": s.id, "period": s.period, "total": s.total, "by": caller.user}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
            other => other?,
        }
        Ok(s)
    }

    /// A rep's lines in the branch's settlements of `period`, with totals
    /// by status. Reps see only their own.
    pub fn statement(
        &self,
        caller: &Principal,
        branch: &str,
        rep: &str,
        period: &str,
    ) -> Result<Statement, ServiceError> {
        caller.may_read(&ResourceRef::statement(branch, rep, period))?;
        self.require_branch_exists("branch", branch)?;
        let period = parse_period(period)?.to_string();
        let mut lines = Vec::new();
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        let prefix = keys::prefix(keys::IX_SETTLEMENT_BRANCH, &[branch, &period]);
        for (_, id) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let id = String::from_utf8_lossy(&id);
            let Some(s) = self
                .repo
                .read::<Settlement>(&keys::key(keys::SETTLEMENT, &[&id]))?
            else {
                continue;
            };
            let status = s.value.status;
            for l in s.value.lines.into_iter().filter(|l| l.rep == rep) {
                *totals.entry(status_name(status).into()).or_default() += l.amount;
                lines.push(StatementLine {
                    settlement: s.value.id.clone(),
                    status,
                    line: l,
                });
            }
        }
        for t in totals.values_mut() {
            *t = t.normalize();
        }
        Ok(Statement {
            rep: rep.into(),
            branch: branch.into(),
            period,
            lines,
            totals,
            currency: "CNY".into(),
        })
    }

    /// What a settlement of `req.period` would pay with version `version`
    /// of `name` activated (as `activate` would, with `effective_from`),
    /// beside what the active versions pay; writes nothing.
    pub async fn simulate_policy(
        &self,
        caller: &Principal,
        name: &str,
        version: u64,
        req: SimulateRequest,
    ) -> Result<Simulation, ServiceError> {
        self.simulate_policy_with(caller, name, version, req, None)
            .await
    }

    /// [`Services::simulate_policy`], reporting the progress of both
    /// computations (the active rules', then the candidate's).
    pub async fn simulate_policy_with(
        &self,
        caller: &Principal,
        name: &str,
        version: u64,
        req: SimulateRequest,
        progress: Option<Arc<Progress>>,
    ) -> Result<Simulation, ServiceError> {
        let policy = self.policy(caller, name)?;
        if let Some(b) = policy.scope.branch() {
            caller.require_manager_of(b)?;
        }
        let branch = self.settlement_branch(caller, &req.branch)?;
        let period = parse_period(&req.period)?;
        if version == 0 || version > policy.latest_version {
            return Err(ServiceError::not_found(
                "policy version",
                &format!("{name}@{version}"),
            ));
        }
        let active_book = self.rule_book(&branch.id, None)?;
        let candidate = Candidate {
            name,
            version,
            effective_from: req.effective_from,
        };
        let candidate_book = self.rule_book(&branch.id, Some(&candidate))?;
        let active = self
            .compute(branch.clone(), period, active_book, progress.clone())
            .await?;
        let proposed = self
            .compute(branch.clone(), period, candidate_book, progress)
            .await?;
        Ok(compare(name, version, &branch.id, period, active, proposed))
    }
}

/// Lines are the same subject's when rep, rule and subject match.
fn line_key(l: &SettlementLine) -> (String, String, String, String, String) {
    (
        l.rep.clone(),
        l.rule.clone(),
        l.subject_kind.clone(),
        l.subject.clone(),
        l.subject_period.clone(),
    )
}

fn compare(
    name: &str,
    version: u64,
    branch: &str,
    period: Period,
    active: Computed,
    proposed: Computed,
) -> Simulation {
    let mut reps: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for l in &active.lines {
        reps.entry(l.rep.clone()).or_default().0 += l.amount;
    }
    for l in &proposed.lines {
        reps.entry(l.rep.clone()).or_default().1 += l.amount;
    }
    let mut by_key: BTreeMap<_, (Option<SettlementLine>, Option<SettlementLine>)> = BTreeMap::new();
    for l in &active.lines {
        by_key.entry(line_key(l)).or_default().0 = Some(l.clone());
    }
    for l in &proposed.lines {
        by_key.entry(line_key(l)).or_default().1 = Some(l.clone());
    }
    let changes = by_key
        .into_values()
        .filter(|(a, c)| match (a, c) {
            (Some(a), Some(c)) => {
                a.amount != c.amount || a.flag != c.flag || a.explanation != c.explanation
            }
            _ => true,
        })
        .map(|(active, candidate)| LineChange { active, candidate })
        .collect();
    let sum =
        |lines: &[SettlementLine]| lines.iter().map(|l| l.amount).sum::<Decimal>().normalize();
    Simulation {
        policy: name.into(),
        version,
        branch: branch.into(),
        period: period.to_string(),
        reps: reps
            .into_iter()
            .map(|(rep, (a, c))| RepComparison {
                rep,
                active: a.normalize(),
                candidate: c.normalize(),
                difference: (c - a).normalize(),
            })
            .collect(),
        active_total: sum(&active.lines),
        candidate_total: sum(&proposed.lines),
        changes,
        candidate_lines: proposed.lines,
    }
}

/// The CSV columns of statements and settlements (one row per line).
const CSV_HEADER: &str = "settlement,status,rep,rule,subject_kind,subject,subject_period,amount,currency,flag,policy,policy_version,explanation\n";

/// One CSV field, quoted when it holds a separator, a quote or a newline.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// One line's row.
fn csv_line(out: &mut String, settlement: &str, status: SettlementStatus, l: &SettlementLine) {
    let row = [
        settlement.to_string(),
        status_name(status).to_string(),
        l.rep.clone(),
        l.rule.clone(),
        l.subject_kind.clone(),
        l.subject.clone(),
        l.subject_period.clone(),
        l.amount.to_string(),
        l.currency.clone(),
        l.flag.clone().unwrap_or_default(),
        l.policy.name.clone(),
        l.policy.version.to_string(),
        l.explanation.clone(),
    ];
    out.push_str(
        &row.iter()
            .map(|v| csv_field(v))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push('\n');
}

/// A statement as CSV: one row per line, then one row per status total.
pub fn statement_csv(s: &Statement) -> String {
    let mut out = String::from(CSV_HEADER);
    for l in &s.lines {
        csv_line(&mut out, &l.settlement, l.status, &l.line);
    }
    for (status, total) in &s.totals {
        out.push_str(&format!(
            "total,{status},{},,,,{},{},CNY,,,,\n",
            csv_field(&s.rep),
            csv_field(&s.period),
            total
        ));
    }
    out
}

/// A whole settlement as CSV, in the statements' columns: one row per line,
/// then one total row per rep and one for the settlement (rep left empty).
pub fn settlement_csv(st: &Settlement) -> String {
    let mut out = String::from(CSV_HEADER);
    for l in &st.lines {
        csv_line(&mut out, &st.id, st.status, l);
    }
    let status = status_name(st.status);
    let period = csv_field(&st.period);
    for t in &st.totals {
        out.push_str(&format!(
            "total,{status},{},,,,{period},{},CNY,,,,\n",
            csv_field(&t.rep),
            t.total
        ));
    }
    out.push_str(&format!(
        "total,{status},,,,,{period},{},CNY,,,,\n",
        st.total
    ));
    out
}
