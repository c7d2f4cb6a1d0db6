//! One settlement computation, without writing anything: gathers the
//! subjects a period settles (deals signed in its months, customers whose
//! 3-month window closed in its quarters, reps for its half-years and
//! year), asks the rule versions in force on each subject's day, and turns
//! their answers into lines. Subjects an approved settlement already paid
//! are skipped when the rule still pays the same, and get a reasoned
//! true-up line when it now pays differently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use parking_lot::{Mutex, RwLock};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::repo::{decode, decode_deal, decode_deal_record};
use super::rule_book::{RuleBook, RuleVersion};
use super::{Progress, ServiceError, Services};
use crate::domain::branch::Branch;
use crate::domain::customer::{Customer, Source};
use crate::domain::fx::{FxRate, FxUsed};
use crate::domain::settlement::{Adjustment, SettlementLine};
use crate::domain::token::{Grant, Role};
use crate::incentive::inputs::{
    customer_input, customer_rates, deal_input, rep_input, BranchCalendar, DealRecord, SignedOrder,
};
use crate::incentive::period::{day_start, earliest_window_start, local_day, window_last_day};
use crate::incentive::{FxTable, Period, PeriodKind, SubjectKind};
use crate::policy::hook_values::customer_info;
use crate::policy::hooks::{BonusInput, BonusOutput, BranchInfo, CustomerInfo};
use crate::policy::PolicyCalls;
use crate::policy::{Limits, PolicyError};
use crate::store::{keys, Entry, Store};

/// Subjects per unit of work handed to a worker thread.
const CHUNK: usize = 512;

/// What an approved settlement paid for one subject under one rule, so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Settled {
    /// The settlements that paid it (the first, then any true-ups).
    pub settlements: Vec<String>,
    /// What they paid in total.
    pub paid: Decimal,
    /// The latest line (its explanation and policy).
    pub line: SettlementLine,
}

/// The ledger key of a subject's rule.
pub(crate) fn settled_key(branch: &str, line: &SettlementLine) -> Vec<u8> {
    keys::key(
        keys::SETTLED,
        &[
            branch,
            &line.subject_kind,
            &line.subject,
            ledger_period(&line.subject_kind, &line.subject_period),
            &line.rule,
        ],
    )
}

/// The period part of a subject's ledger identity. A customer is paid once
/// whatever quarter its window closes in (an imported earlier order can
/// move it), so its identity has none; a deal's month never changes; a
/// rep's half-year or year is what is settled.
fn ledger_period<'a>(kind: &str, period: &'a str) -> &'a str {
    if kind == SubjectKind::Customer.name() {
        ""
    } else {
        period
    }
}

/// A subject's identity in the ledger: (kind, subject, subject period).
type SubjectKey = (String, String, String);

/// What approved settlements paid, by subject then rule.
type Ledger = HashMap<SubjectKey, BTreeMap<String, Settled>>;

/// A subject ready for the rules: its input, day, own period and the rules
/// in force on that day.
type Prepared = (
    Arc<BonusInput>,
    Arc<Vec<FxUsed>>,
    NaiveDate,
    Period,
    Arc<Vec<Arc<RuleVersion>>>,
    Option<String>,
);

/// A subject's input, the FX rates it reads, the day that picks its rule
/// versions, its own period, and for a cancelled contract why no rule pays
/// it any more.
struct SubjectInput {
    input: BonusInput,
    /// The FX rates its amounts are read with.
    fx: Vec<FxUsed>,
    day: NaiveDate,
    period: Period,
    cancelled: Option<String>,
}

/// One chunk's lines and skipped count, or why it failed.
type ChunkOutcome = Result<(Vec<SettlementLine>, usize), ServiceError>;

/// A subject before its input is built.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    /// A signed deal.
    Deal(String),
    /// A customer, by id.
    Customer(String),
    /// A rep over a half-year or year, with their new-customer count.
    Rep(String, Period),
}

/// The outcome of a computation.
pub(crate) struct Computed {
    /// Lines, sorted by rep, rule, subject.
    pub lines: Vec<SettlementLine>,
    /// Subjects skipped because an approved settlement pays them the same.
    pub already_settled: usize,
}

/// Everything the workers share.
struct Context<'a> {
    services: &'a Services,
    calendar: BranchCalendar,
    fx: FxTable,
    book: &'a RuleBook,
    limits: &'a Limits,
    /// Paid so far, by (kind, subject, subject period), then rule.
    ledger: Ledger,
    /// Self-developed customers with a first order, by (rep, period).
    new_customers: HashMap<(String, Period), i64>,
    /// Customers whose window closes in the period: its first and last day.
    windows: HashMap<String, (NaiveDate, NaiveDate)>,
    /// Customers read so far, shared by the workers (each customer is
    /// decoded once, not once per worker and again for its window).
    customers: RwLock<HashMap<String, Option<Arc<KnownCustomer>>>>,
    /// Where a job follows the work: a unit per day of contracts, per
    /// chunk of other subjects and per chunk of customer windows.
    progress: Option<&'a Progress>,
}

/// A customer as read once: its record and what hooks see of it.
struct KnownCustomer {
    record: Customer,
    info: CustomerInfo,
}

impl Services {
    /// Computes the lines a settlement of `period` (e.g. `2026-Q1`) of
    /// `branch` would hold, writing nothing: with the stored rules in force
    /// on each subject's day, or with `rules` in force every day. Runs the
    /// rules on every core of the calling thread's machine: call it off the
    /// async workers. (The settlement benchmark measures its runtimes with it.)
    pub fn compute_period(
        &self,
        branch: &str,
        period: &str,
        rules: Option<Vec<RuleVersion>>,
    ) -> Result<Vec<SettlementLine>, ServiceError> {
        let branch: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        let period = Period::parse(period).map_err(|e| ServiceError::invalid("period", e))?;
        let book = match rules {
            Some(r) => RuleBook::fixed(r),
            None => self.rule_book(&branch.id, None)?,
        };
        let limits = std::sync::Arc::clone(&self.policies.executor.limits);
        Ok(self
            .compute_settlement(&branch, period, &book, &limits, None)?
            .lines)
    }

    /// Computes what `book` pays for `period` of `branch`.
    pub(crate) fn compute_settlement(
        &self,
        branch: &Branch,
        period: Period,
        book: &RuleBook,
        limits: &Limits,
        progress: Option<&Progress>,
    ) -> Result<Computed, ServiceError> {
        let tz: Tz = branch.timezone.parse().unwrap_or(chrono_tz::UTC);
        let calendar = BranchCalendar {
            info: BranchInfo {
                id: branch.id.clone(),
                timezone: branch.timezone.clone(),
            },
            tz,
        };
        let fx = FxTable::new(self.all_fx_rates()?);
        let ledger = self.ledger(&branch.id)?;
        let mut subjects: BTreeSet<Subject> = BTreeSet::new();

        let end = day_after(period.last_day(), tz);
        // Quarterly: customers whose window closed in the period; their
        // orders are collected from the same stream as the deal subjects.
        let mut windows = HashMap::new();
        if period.kind >= PeriodKind::Quarter {
            let from = day_start(earliest_window_start(&period), tz);
            for (id, first) in self.first_orders(&branch.id, from, end)? {
                let first = local_day(first, tz);
                let last = window_last_day(first);
                if period.contains(last) {
                    windows.insert(id, (first, last));
                }
            }
        }
        // Monthly: deals signed in the period, streamed from the signing
        // index (its entries carry what bonus rules see of each deal), one
        // range per local day so workers scan in parallel; days before the
        // period only feed the windows.
        let stream_from = windows
            .values()
            .map(|(first, _)| *first)
            .min()
            .map_or(period.first_day(), |f| f.min(period.first_day()));
        let deals: Vec<DealPages> = stream_from
            .iter_days()
            .take_while(|d| *d <= period.last_day())
            .map(|d| {
                let mut pages = DealPages::new(&branch.id, day_start(d, tz), day_after(d, tz));
                pages.subjects = period.contains(d);
                pages
            })
            .collect();
        // Half-yearly and yearly: every rep of the branch.
        let mut new_customers = HashMap::new();
        let rep_periods: Vec<Period> = [PeriodKind::Half, PeriodKind::Year]
            .iter()
            .flat_map(|k| period.parts(*k))
            .collect();
        // Rep periods settled before are looked at again (true-ups), with
        // their counts as they stand now.
        let mut counted: BTreeSet<Period> = rep_periods.iter().copied().collect();
        for (kind, _, p) in ledger.keys() {
            if let (Some(SubjectKind::Rep), Ok(p)) = (SubjectKind::parse(kind), Period::parse(p)) {
                counted.insert(p);
            }
        }
        for p in &counted {
            let (s, e) = (day_start(p.first_day(), tz), day_after(p.last_day(), tz));
            for (id, _) in self.first_orders(&branch.id, s, e)? {
                let c: Customer = self.repo.fetch(keys::CUSTOMER, "customer", &id)?.value;
                if let (Source::SelfDeveloped, Some(owner)) = (c.source, c.owner) {
                    *new_customers.entry((owner, *p)).or_insert(0) += 1;
                }
            }
        }
        if !rep_periods.is_empty() {
            let reps = self.branch_reps(&branch.id)?;
            for p in &rep_periods {
                for rep in &reps {
                    subjects.insert(Subject::Rep(rep.clone(), *p));
                }
            }
        }
        // True-ups: everything settled before is looked at again (subjects
        // of this period are in already).
        for (kind, subject, subject_period) in ledger.keys() {
            let covered = match SubjectKind::parse(kind) {
                Some(SubjectKind::Customer) => windows.contains_key(subject),
                _ => Period::parse(subject_period)
                    .is_ok_and(|p| period.contains(p.first_day()) && period.contains(p.last_day())),
            };
            if covered {
                continue;
            }
            let again = match (SubjectKind::parse(kind), Period::parse(subject_period)) {
                (Some(SubjectKind::Deal), _) => Subject::Deal(subject.clone()),
                (Some(SubjectKind::Customer), _) => Subject::Customer(subject.clone()),
                (Some(SubjectKind::Rep), Ok(p)) => Subject::Rep(subject.clone(), p),
                _ => continue,
            };
            subjects.insert(again);
        }

        let cx = Context {
            services: self,
            calendar,
            fx,
            book,
            limits,
            ledger,
            new_customers,
            windows,
            customers: RwLock::default(),
            progress,
        };
        cx.run(deals, subjects.into_iter().collect())
    }

    /// Every FX rate (they are few: one per currency and change).
    pub(crate) fn all_fx_rates(&self) -> Result<Vec<FxRate>, ServiceError> {
        self.repo
            .store()
            .scan(&keys::prefix(keys::FX, &[]), None, usize::MAX)?
            .iter()
            .map(|(k, v)| decode(k, v))
            .collect()
    }

    /// What approved settlements paid in `branch`, by subject then rule.
    fn ledger(&self, branch: &str) -> Result<Ledger, ServiceError> {
        let mut out = Ledger::new();
        for (k, v) in
            self.repo
                .store()
                .scan(&keys::prefix(keys::SETTLED, &[branch]), None, usize::MAX)?
        {
            let s: Settled = decode(&k, &v)?;
            let l = &s.line;
            out.entry((
                l.subject_kind.clone(),
                l.subject.clone(),
                ledger_period(&l.subject_kind, &l.subject_period).to_string(),
            ))
            .or_default()
            .insert(l.rule.clone(), s);
        }
        Ok(out)
    }

    /// Customers of `branch` whose first order falls in `[from, to)`.
    fn first_orders(
        &self,
        branch: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, ServiceError> {
        let mut out = Vec::new();
        self.time_range(
            keys::IX_CUSTOMER_FIRST_ORDER,
            branch,
            from,
            to,
            |time, _, id| {
                let id = String::from_utf8_lossy(&id).into_owned();
                let at = std::str::from_utf8(time)
                    .ok()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .ok_or_else(|| {
                        ServiceError::Store(crate::store::StoreError::Corrupt {
                            key: format!("{}/{branch}/…/{id}", keys::IX_CUSTOMER_FIRST_ORDER),
                            reason: "not a time index key".into(),
                        })
                    })?;
                out.push((id, at));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Visits `(time, key, value)` of the entries of a time index under
    /// `owner` (a branch or a customer) with times in `[from, to)`, in time
    /// order.
    pub(crate) fn time_range(
        &self,
        tag: &str,
        owner: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut visit: impl FnMut(&[u8], &[u8], Vec<u8>) -> Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        const PAGE: usize = 4096;
        let prefix = keys::prefix(tag, &[owner]);
        let (from, to) = (keys::time(&from), keys::time(&to));
        // Keys are `prefix time NUL id`: everything after `prefix from` (a
        // strict prefix of them) starts at `from`.
        let mut after = [prefix.as_slice(), from.as_bytes()].concat();
        loop {
            let page = self.repo.store().scan(&prefix, Some(&after), PAGE)?;
            let full = page.len() == PAGE;
            for (key, value) in page {
                let rest = &key[prefix.len()..];
                let time = rest.split(|b| *b == 0).next().unwrap_or_default();
                if time >= to.as_bytes() {
                    return Ok(());
                }
                visit(time, &key, value)?;
                after = key;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The branch's reps: users holding a rep token for it.
    pub(crate) fn branch_reps(&self, branch: &str) -> Result<BTreeSet<String>, ServiceError> {
        let mut reps = BTreeSet::new();
        for (k, v) in self
            .repo
            .store()
            .scan(&keys::prefix(keys::TOKEN, &[]), None, usize::MAX)?
        {
            let g: Grant = decode(&k, &v)?;
            if g.role == Role::Rep && g.branch.as_deref() == Some(branch) {
                reps.insert(g.user);
            }
        }
        Ok(reps)
    }
}

/// The first instant after local day `day`.
fn day_after(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    day.succ_opt()
        .map_or(DateTime::<Utc>::MAX_UTC, |d| day_start(d, tz))
}

/// The signing index of a branch over a time range, read page by page by
/// whichever worker is free.
struct DealPages {
    prefix: Vec<u8>,
    after: Vec<u8>,
    to: String,
    done: bool,
    pages: usize,
    /// Whether its deals are subjects (else they only feed windows).
    subjects: bool,
}

impl DealPages {
    /// Entries read per page.
    const PAGE: usize = 1024;

    fn new(branch: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let prefix = keys::prefix(keys::IX_DEAL_SIGNED, &[branch]);
        // Keys are `prefix time NUL id`: everything after `prefix from` (a
        // strict prefix of them) starts at `from`.
        let after = [prefix.as_slice(), keys::time(&from).as_bytes()].concat();
        DealPages {
            prefix,
            after,
            to: keys::time(&to),
            done: false,
            pages: 0,
            subjects: true,
        }
    }

    /// The next page (its number and entries), or `None` at the end.
    fn next(&mut self, store: &dyn Store) -> Result<Option<(usize, Vec<Entry>)>, ServiceError> {
        if self.done {
            return Ok(None);
        }
        let mut page = store.scan(&self.prefix, Some(&self.after), Self::PAGE)?;
        self.done = page.len() < Self::PAGE;
        let at = self.prefix.len();
        let to = self.to.as_bytes();
        if let Some(end) = page
            .iter()
            .position(|(k, _)| k[at..].split(|b| *b == 0).next().unwrap_or_default() >= to)
        {
            page.truncate(end);
            self.done = true;
        }
        if let Some((k, _)) = page.last() {
            self.after = k.clone();
        }
        self.pages += 1;
        Ok(Some((self.pages - 1, page)))
    }
}

/// Where other chunks sort among units of work (after every deal page,
/// which sort by day, then page).
const OTHER_CHUNKS: usize = 1 << 48;
/// Where customer-window chunks sort (last).
const WINDOW_CHUNKS: usize = 1 << 49;

/// Orders of window customers collected from the deal stream.
type Orders = HashMap<String, Vec<SignedOrder>>;

impl Context<'_> {
    /// Evaluates every subject on all cores, then merges in subject order.
    fn run(&self, days: Vec<DealPages>, subjects: Vec<Subject>) -> Result<Computed, ServiceError> {
        self.read_window_customers()?;
        let days: Vec<Mutex<DealPages>> = days.into_iter().map(Mutex::new).collect();
        let chunks: Vec<&[Subject]> = subjects.chunks(CHUNK).collect();
        let step = |n: usize| self.progress.inspect(|p| p.advance(n as u64));
        if let Some(p) = self.progress {
            p.add_total((days.len() + chunks.len()) as u64);
        }
        let (next_day, next) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<(usize, ChunkOutcome)>> = Mutex::default();
        let collected: Mutex<Vec<Orders>> = Mutex::default();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let mut orders: Orders = HashMap::new();
                    let mut day = next_day.fetch_add(1, Ordering::Relaxed);
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let (page, subjects) = match days.get(day) {
                            Some(pages) => {
                                let mut pages = pages.lock();
                                (pages.next(self.services.repo.store()), pages.subjects)
                            }
                            None => (Ok(None), false),
                        };
                        let (order, outcome) = match page {
                            Ok(Some((n, entries))) => (
                                day << 24 | n,
                                self.deal_page(entries, subjects, &mut orders),
                            ),
                            Err(e) => (day << 24, Err(e)),
                            Ok(None) if day < days.len() => {
                                step(1);
                                day = next_day.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            Ok(None) => {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= chunks.len() {
                                    collected.lock().push(std::mem::take(&mut orders));
                                    return;
                                }
                                let outcome = self.chunk(chunks[i]);
                                step(1);
                                (OTHER_CHUNKS + i, outcome)
                            }
                        };
                        if outcome.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().push((order, outcome));
                    }
                });
            }
        });
        let mut results = results.into_inner();
        if !failed.load(Ordering::Relaxed) && !self.windows.is_empty() {
            results.extend(self.windows_phase(collected.into_inner()));
        }
        results.sort_by_key(|(i, _)| *i);
        let mut lines = Vec::new();
        let mut already_settled = 0;
        for (_, r) in results {
            let (l, s) = r?;
            lines.extend(l);
            already_settled += s;
        }
        lines.sort_by(|a, b| {
            (
                &a.rep,
                &a.rule,
                &a.subject_kind,
                &a.subject,
                &a.subject_period,
            )
                .cmp(&(
                    &b.rep,
                    &b.rule,
                    &b.subject_kind,
                    &b.subject,
                    &b.subject_period,
                ))
        });
        Ok(Computed {
            lines,
            already_settled,
        })
    }

    /// Evaluates a chunk of subjects: builds their inputs, lets each rule
    /// version in force answer all the subjects it applies to at once, then
    /// turns the answers into lines (new ones, or true-ups of what was paid).
    fn chunk(&self, subjects: &[Subject]) -> ChunkOutcome {
        let mut items = Vec::with_capacity(subjects.len());
        for s in subjects {
            if let Some(subject) = self.input(s)? {
                items.push(self.prepare(subject));
            }
        }
        self.evaluate(items)
    }

    /// Evaluates a page of the signing index: each entry is a deal subject.
    fn deal_page(&self, entries: Vec<Entry>, subjects: bool, orders: &mut Orders) -> ChunkOutcome {
        let mut items = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let deal = decode_deal_record(&key, &value)?;
            if let (Some((first, last)), Some(signed)) =
                (self.windows.get(&deal.customer_id), deal.signed_at)
            {
                let day = local_day(signed, self.calendar.tz);
                if *first <= day && day <= *last {
                    // A customer's id is copied once, not once per order.
                    let order = SignedOrder::of(&deal);
                    match orders.get_mut(&deal.customer_id) {
                        Some(list) => list.extend(order),
                        None => {
                            orders.insert(deal.customer_id.clone(), order.into_iter().collect());
                        }
                    }
                }
            }
            if !subjects {
                continue;
            }
            if let Some(subject) = self.deal_subject(deal)? {
                items.push(self.prepare(subject));
            }
        }
        self.evaluate(items)
    }

    /// Settles the customers whose window closed in the period from the
    /// orders the deal stream collected, on all cores.
    fn windows_phase(&self, collected: Vec<Orders>) -> Vec<(usize, ChunkOutcome)> {
        let mut orders: Orders = HashMap::new();
        for part in collected {
            for (customer, deals) in part {
                orders.entry(customer).or_default().extend(deals);
            }
        }
        let mut windows: Vec<(&String, Vec<SignedOrder>)> = self
            .windows
            .keys()
            .map(|c| (c, orders.remove(c).unwrap_or_default()))
            .collect();
        windows.sort_by(|a, b| a.0.cmp(b.0));
        let chunks: Vec<_> = windows.chunks(CHUNK).collect();
        if let Some(p) = self.progress {
            p.add_total(chunks.len() as u64);
        }
        on_all_cores(chunks.len(), |i| {
            let outcome = self.window_chunk(chunks[i]);
            self.progress.inspect(|p| p.advance(1));
            outcome
        })
        .into_iter()
        .map(|(i, outcome)| (WINDOW_CHUNKS + i, outcome))
        .collect()
    }

    /// Reads the window customers on all cores, in key order, before the
    /// deal stream asks for them: sled serves neighbouring keys from the
    /// same pages, where the stream would read them in random order.
    fn read_window_customers(&self) -> Result<(), ServiceError> {
        let mut ids: Vec<&String> = self.windows.keys().collect();
        ids.sort();
        let chunks: Vec<_> = ids.chunks(CHUNK).collect();
        on_all_cores(chunks.len(), |i| {
            chunks[i]
                .iter()
                .try_for_each(|id| self.customer(id).map(drop))
        })
        .into_iter()
        .try_for_each(|(_, read)| read)
    }

    /// Customer subjects of one chunk of windows.
    fn window_chunk(&self, windows: &[(&String, Vec<SignedOrder>)]) -> ChunkOutcome {
        let mut items = Vec::with_capacity(windows.len());
        for (id, deals) in windows {
            let Some(c) = self.customer(id)? else {
                continue;
            };
            let (_, last) = self.windows[*id];
            let quarter = Period::containing(PeriodKind::Quarter, last);
            let input = customer_input(&self.calendar, &quarter, &c.record, deals, &self.fx)
                .map_err(|e| ServiceError::invalid("period", e))?;
            items.push(self.prepare(SubjectInput {
                input,
                fx: customer_rates(&self.calendar, &c.record, deals, &self.fx),
                day: last,
                period: quarter,
                cancelled: None,
            }));
        }
        self.evaluate(items)
    }

    /// A subject with the rules in force on its day (none for a cancelled
    /// contract).
    fn prepare(&self, s: SubjectInput) -> Prepared {
        let rules = match s.cancelled {
            Some(_) => Arc::default(),
            None => self.book.on(s.day),
        };
        (
            Arc::new(s.input),
            Arc::new(s.fx),
            s.day,
            s.period,
            rules,
            s.cancelled,
        )
    }

    /// Lets each rule version in force answer all the prepared subjects it
    /// applies to at once, then turns the answers into lines.
    fn evaluate(&self, items: Vec<Prepared>) -> ChunkOutcome {
        // A rule that declares the subjects it settles is not asked about
        // others: its answer for them is no lines.
        let mut answers: Vec<Vec<Option<Result<BonusOutput, PolicyError>>>> = items
            .iter()
            .map(|(input, .., rules, _)| {
                rules
                    .iter()
                    .map(|r| (!settles(r, input)).then(|| Ok(BonusOutput::default())))
                    .collect()
            })
            .collect();
        let mut distinct: Vec<&Arc<RuleVersion>> = Vec::new();
        for rule in items.iter().flat_map(|(.., rules, _)| rules.iter()) {
            if !distinct.iter().any(|d| Arc::ptr_eq(d, rule)) {
                distinct.push(rule);
            }
        }
        for rule in distinct {
            let (who, inputs): (Vec<(usize, usize)>, Vec<Arc<BonusInput>>) = items
                .iter()
                .enumerate()
                .filter_map(|(i, (input, .., rules, _))| {
                    let at = rules.iter().position(|r| Arc::ptr_eq(r, rule))?;
                    answers[i][at]
                        .is_none()
                        .then(|| ((i, at), Arc::clone(input)))
                })
                .unzip();
            let outs = rule.exec.bonus_many(&inputs, self.limits);
            for ((i, at), out) in who.into_iter().zip(outs) {
                answers[i][at] = Some(out);
            }
        }
        let mut lines = Vec::new();
        let mut skipped = 0;
        for ((input, fx, day, period, rules, cancelled), answers) in items.iter().zip(answers) {
            let mut fresh = Vec::new();
            for (rule, answer) in rules.iter().zip(answers) {
                let out = answer
                    .unwrap_or(Err(PolicyError::Failed("the rule gave no answer".into())))
                    .map_err(|e| failed(rule, input, e))?;
                for l in out.lines {
                    check_line(&l, &fresh).map_err(|e| failed(rule, input, e))?;
                    fresh.push(SettlementLine {
                        rep: input.rep.clone(),
                        rule: l.rule,
                        amount: l.amount.normalize(),
                        currency: "CNY".into(),
                        subject: input.subject.clone(),
                        subject_kind: input.subject_kind.clone(),
                        subject_period: period.to_string(),
                        subject_day: *day,
                        explanation: l.explanation,
                        flag: l.flag,
                        policy: rule.policy.clone(),
                        fx_rates: fx.to_vec(),
                        adjusts: None,
                    });
                }
            }
            let paid = self.paid_for(input, period);
            against_ledger(
                paid,
                *day,
                cancelled.as_deref(),
                fresh,
                &mut lines,
                &mut skipped,
            );
        }
        Ok((lines, skipped))
    }

    /// What approved settlements paid for a subject, by rule.
    fn paid_for(&self, input: &BonusInput, period: &Period) -> Option<&BTreeMap<String, Settled>> {
        if self.ledger.is_empty() {
            return None;
        }
        let period = period.to_string();
        self.ledger.get(&(
            input.subject_kind.clone(),
            input.subject.clone(),
            ledger_period(&input.subject_kind, &period).to_string(),
        ))
    }

    /// A signed deal's input, its signing day and month.
    fn deal_subject(&self, deal: DealRecord) -> Result<Option<SubjectInput>, ServiceError> {
        let Some(signed) = deal.signed_at else {
            return Ok(None);
        };
        let customer = self.customer(&deal.customer_id)?.map(|c| c.info.clone());
        let tz = self.calendar.tz;
        let day = local_day(signed, tz);
        let cancelled = deal.cancelled_at.map(|t| {
            format!(
                "the contract was cancelled on {} ({})",
                local_day(t, tz),
                deal.cancel_reason.as_deref().unwrap_or("no reason given")
            )
        });
        let fx = self
            .fx
            .receipts([(deal.currency.as_str(), day), ("CNY", day)]);
        let input = deal_input(&self.calendar, deal, day, customer, &self.fx);
        Ok(Some(SubjectInput {
            input,
            fx,
            day,
            period: Period::containing(PeriodKind::Month, day),
            cancelled,
        }))
    }

    /// A subject's input, the day that picks its rule versions and its own
    /// period; `None` when the subject no longer exists.
    fn input(&self, subject: &Subject) -> Result<Option<SubjectInput>, ServiceError> {
        let services = self.services;
        let tz = self.calendar.tz;
        Ok(match subject {
            Subject::Deal(id) => {
                let key = keys::key(keys::DEAL, &[id]);
                let Some(raw) = services.repo.store().get(&key)? else {
                    return Ok(None);
                };
                return self.deal_subject(DealRecord::from(&decode_deal(&key, &raw)?));
            }
            Subject::Customer(id) => {
                let Some(c) = self.customer(id)? else {
                    return Ok(None);
                };
                let Some(first) = c.record.first_order_at else {
                    return Ok(None);
                };
                let first_day = local_day(first, tz);
                let last = window_last_day(first_day);
                let quarter = Period::containing(PeriodKind::Quarter, last);
                let deals =
                    self.signed_orders_of(id, day_start(first_day, tz), day_after(last, tz))?;
                let input = customer_input(&self.calendar, &quarter, &c.record, &deals, &self.fx)
                    .map_err(|e| ServiceError::invalid("period", e))?;
                Some(SubjectInput {
                    input,
                    fx: customer_rates(&self.calendar, &c.record, &deals, &self.fx),
                    day: last,
                    period: quarter,
                    cancelled: None,
                })
            }
            Subject::Rep(name, p) => {
                let n = self
                    .new_customers
                    .get(&(name.clone(), *p))
                    .copied()
                    .unwrap_or(0);
                Some(SubjectInput {
                    input: rep_input(&self.calendar, p, name, n),
                    fx: Vec::new(),
                    day: p.last_day(),
                    period: *p,
                    cancelled: None,
                })
            }
        })
    }

    /// A customer as read once by any worker; `None` when it is gone.
    fn customer(&self, id: &str) -> Result<Option<Arc<KnownCustomer>>, ServiceError> {
        if let Some(known) = self.customers.read().get(id) {
            return Ok(known.clone());
        }
        let known = self
            .services
            .repo
            .read::<Customer>(&keys::key(keys::CUSTOMER, &[id]))?
            .map(|s| {
                Arc::new(KnownCustomer {
                    info: customer_info(&s.value),
                    record: s.value,
                })
            });
        // Two workers may read the same customer at once: either copy will do.
        self.customers.write().insert(id.to_string(), known.clone());
        Ok(known)
    }

    /// A customer's orders signed in `[from, to)`.
    fn signed_orders_of(
        &self,
        customer: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SignedOrder>, ServiceError> {
        let services = self.services;
        let mut out = Vec::new();
        services.time_range(
            keys::IX_DEAL_CUSTOMER_SIGNED,
            customer,
            from,
            to,
            |_, key, value| {
                out.extend(SignedOrder::of(&decode_deal_record(key, &value)?));
                Ok(())
            },
        )?;
        Ok(out)
    }
}

/// Runs `work(0..count)` on all cores; the results with their index, in
/// no particular order.
fn on_all_cores<T: Send>(count: usize, work: impl Fn(usize) -> T + Sync) -> Vec<(usize, T)> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(count));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(count) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                let outcome = work(i);
                results.lock().push((i, outcome));
            });
        }
    });
    results.into_inner()
}

/// Whether `rule` settles the subject of `input` (every subject, unless it
/// declares which).
fn settles(rule: &RuleVersion, input: &BonusInput) -> bool {
    rule.exec
        .bonus_subjects()
        .is_none_or(|kinds| kinds.contains(&input.subject_kind))
}

/// Adds a subject's `fresh` lines, or, when approved settlements already
/// paid it (`paid`, by rule), only what differs: true-ups.
fn against_ledger(
    paid: Option<&BTreeMap<String, Settled>>,
    day: NaiveDate,
    cancelled: Option<&str>,
    fresh: Vec<SettlementLine>,
    lines: &mut Vec<SettlementLine>,
    skipped: &mut usize,
) {
    let Some(paid) = paid else {
        lines.extend(fresh);
        return;
    };
    let mut seen = BTreeSet::new();
    for mut line in fresh {
        seen.insert(line.rule.clone());
        match paid.get(&line.rule) {
            None => lines.push(line),
            Some(s) if s.paid == line.amount => *skipped += 1,
            Some(s) => {
                let now = line.amount;
                line.amount = (now - s.paid).normalize();
                line.adjusts = Some(Adjustment {
                    settlements: s.settlements.clone(),
                    paid: s.paid,
                    now,
                    reason: format!(
                        "true-up: settled at {} CNY, the rule now pays {} CNY ({}); settled as: {}",
                        s.paid,
                        now,
                        rates_corrected(&s.line.fx_rates, &line.fx_rates)
                            .unwrap_or_else(|| "the inputs changed since".into()),
                        s.line.explanation
                    ),
                });
                lines.push(line);
            }
        }
    }
    for (rule, s) in paid.iter().filter(|(r, _)| !seen.contains(*r)) {
        if s.paid.is_zero() {
            *skipped += 1;
            continue;
        }
        let mut line = s.line.clone();
        line.amount = -s.paid;
        line.subject_day = day;
        line.flag = None;
        let why = cancelled.map_or_else(
            || format!("the rule `{rule}` no longer pays it"),
            str::to_string,
        );
        line.explanation = format!(
            "true-up: {why}: the {} CNY paid for {} {} is reversed",
            s.paid, line.subject_kind, line.subject
        );
        line.adjusts = Some(Adjustment {
            settlements: s.settlements.clone(),
            paid: s.paid,
            now: Decimal::ZERO,
            reason: format!(
                "true-up: settled at {} CNY, now nothing ({why}); settled as: {}",
                s.paid, s.line.explanation
            ),
        });
        lines.push(line);
    }
}

/// Says which FX rates were corrected between the versions a settled line
/// read (`before`) and the ones it reads now; `None` when none was.
fn rates_corrected(before: &[FxUsed], now: &[FxUsed]) -> Option<String> {
    let changes: Vec<String> = now
        .iter()
        .filter_map(|n| {
            let b = before
                .iter()
                .find(|b| b.currency == n.currency && b.date == n.date && b.version != n.version)?;
            Some(format!(
                "the {} rate of {} was corrected from {} (version {}) to {} (version {})",
                n.currency, n.date, b.per_usd, b.version, n.per_usd, n.version
            ))
        })
        .collect();
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// Most a bonus line may pay or deduct (as any amount the API accepts).
const MAX_LINE_AMOUNT: i64 = 1_000_000_000_000;

/// Refuses a rule's line that would make the ledger ambiguous or its sums
/// overflow: a second line of the same rule for one subject, a rule name
/// that is empty or holds a NUL (the key separator), an absurd amount.
fn check_line(
    line: &crate::policy::hooks::BonusLine,
    so_far: &[SettlementLine],
) -> Result<(), PolicyError> {
    let bad = |m: String| Err(PolicyError::BadOutput(m));
    if line.rule.is_empty() || line.rule.len() > 100 || line.rule.contains('\0') {
        return bad("a line's `rule` must be 1 to 100 characters without NUL".into());
    }
    if line.amount.abs() > Decimal::from(MAX_LINE_AMOUNT) {
        return bad(format!("line amount {} is beyond ±10^12 CNY", line.amount));
    }
    if so_far.iter().any(|l| l.rule == line.rule) {
        return bad(format!(
            "two lines of rule `{}` for one subject (one line per rule and subject)",
            line.rule
        ));
    }
    Ok(())
}

/// A rule that failed on a subject: the settlement is refused (422).
fn failed(rule: &RuleVersion, input: &BonusInput, error: PolicyError) -> ServiceError {
    ServiceError::PolicyFailed {
        policy: rule.policy.name.clone(),
        version: rule.policy.version,
        hook: format!("bonus ({} {})", input.subject_kind, input.subject),
        error,
    }
}
