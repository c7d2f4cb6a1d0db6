//! Reports for a branch's manager: how key customers, revenue, open deals
//! and overdue follow-ups spread across the reps (docs/business-rules.md §6), and what
//! signed revenue each referring customer brought (docs/business-rules.md §4).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::rep_counts::RepCount;
use super::repo::{decode_deal, decode_deal_record};
use super::tiering::window_from;
use super::{now, PageRequest, ServiceError, Services};
use crate::accounts::cadence::DueStatus;
use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::customer::{Customer, Tier};
use crate::domain::pipeline::StageKind;
use crate::incentive::period::local_day;
use crate::incentive::FxTable;
use crate::store::{counter, keys};

/// One rep's line of the team report.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RepSpread {
    /// The rep (or another owner of customers or deals).
    pub rep: String,
    /// A-tier customers owned.
    pub a: usize,
    /// B-tier customers owned.
    pub b: usize,
    /// C-tier customers owned.
    pub c: usize,
    /// Signed revenue in CNY over the trailing 12 months.
    #[schema(value_type = String)]
    pub signed_revenue: Decimal,
    /// Open deals owned.
    pub open_deals: usize,
    /// Customers overdue for contact plus open tasks past due.
    pub overdue_followups: usize,
}

/// `GET /v1/reports/team`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamReport {
    /// The branch.
    pub branch: String,
    /// The last day of the revenue window (the branch's calendar).
    #[schema(value_type = String)]
    pub as_of: NaiveDate,
    /// Its first day.
    #[schema(value_type = String)]
    pub window_from: NaiveDate,
    /// One line per rep, by name; `(unassigned)` for customers without owner.
    pub reps: Vec<RepSpread>,
    /// The branch's totals.
    pub total: RepSpread,
}

/// One customer a referrer brought.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Referred {
    /// Customer id.
    pub customer_id: String,
    /// Name.
    pub name: String,
    /// Signed contracts in the range (not cancelled).
    pub deals: usize,
    /// Their amount in CNY.
    #[schema(value_type = String)]
    pub revenue: Decimal,
}

/// One referring customer and what its referrals signed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Referrer {
    /// The referring customer.
    pub customer_id: String,
    /// Its name.
    pub name: String,
    /// Signed revenue of the customers it referred, in CNY.
    #[schema(value_type = String)]
    pub revenue: Decimal,
    /// Their signed contracts.
    pub deals: usize,
    /// The customers it referred, highest revenue first.
    pub referred: Vec<Referred>,
}

/// `GET /v1/reports/referrals`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReferralReport {
    /// The branch.
    pub branch: String,
    /// Contracts signed from this day on (the branch's calendar), if given.
    #[schema(value_type = Option<String>)]
    pub from: Option<NaiveDate>,
    /// … up to and including this day, if given.
    #[schema(value_type = Option<String>)]
    pub to: Option<NaiveDate>,
    /// Referrers, highest revenue first (then by id); with `limit`, one
    /// page of them.
    pub referrers: Vec<Referrer>,
    /// Contracts left out: no FX rate in force on their signing day (of
    /// the whole report).
    pub unconverted: usize,
    /// The whole report's totals.
    pub totals: ReferralTotals,
    /// Pass as `cursor` for the next page; null on the last one (and
    /// without `limit`).
    pub next_cursor: Option<String>,
}

/// One stage of the pipeline report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageValue {
    /// The stage id.
    pub stage: String,
    /// Its display name.
    pub name: String,
    /// Open, won or lost.
    pub kind: StageKind,
    /// Deals in the stage (cancelled contracts left out).
    pub deals: usize,
    /// Their amount in CNY at today's rates (the branch's calendar).
    #[schema(value_type = String)]
    pub value: Decimal,
    /// Their amount in each deal currency, as entered.
    #[schema(value_type = BTreeMap<String, String>)]
    pub amounts: BTreeMap<String, Decimal>,
}

/// `GET /v1/reports/pipeline`: the funnel of a branch's deals by stage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PipelineReport {
    /// The branch.
    pub branch: String,
    /// Only this owner's deals (a rep: always their own).
    pub owner: Option<String>,
    /// The day whose FX rates convert the values.
    #[schema(value_type = String)]
    pub as_of: NaiveDate,
    /// The currency of `value`: always `CNY`.
    pub currency: String,
    /// Every stage of the branch's pipeline, in its order.
    pub stages: Vec<StageValue>,
    /// Deals counted but left out of `value`: no rate in force for their currency.
    pub unconverted: usize,
}

/// Query of `GET /v1/reports/pipeline`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PipelineQuery {
    /// The branch.
    pub branch: String,
    /// Only this owner's deals (reps: always themselves).
    pub owner: Option<String>,
}

/// Query of `GET /v1/reports/team`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TeamQuery {
    /// The branch.
    pub branch: String,
}

/// Query of `GET /v1/reports/referrals`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReferralQuery {
    /// The branch.
    pub branch: String,
    /// First signing day counted (`YYYY-MM-DD`, the branch's calendar).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_day")]
    #[param(schema_with = crate::domain::schema::opt_day)]
    pub from: Option<NaiveDate>,
    /// Last signing day counted.
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_day")]
    #[param(schema_with = crate::domain::schema::opt_day)]
    pub to: Option<NaiveDate>,
    /// Referrers per page, 1 to 500 (every referrer in one answer when
    /// absent).
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}

/// The whole referral report's totals (every page's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ReferralTotals {
    /// Signed revenue of all referred customers in the range, in CNY.
    #[schema(value_type = String)]
    pub revenue: Decimal,
    /// Their signed contracts.
    pub deals: usize,
    /// Referred customers.
    pub referred_customers: usize,
}

/// The label of customers and deals without an owner.
const UNASSIGNED: &str = "(unassigned)";

impl Services {
    fn report_branch(
        &self,
        caller: &Principal,
        branch: &str,
    ) -> Result<(Branch, Tz), ServiceError> {
        caller.require_manager_of(branch)?;
        let b: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        let tz = b.timezone.parse().unwrap_or(chrono_tz::UTC);
        Ok((b, tz))
    }

    /// Per rep: A/B/C customers, trailing 12-month signed revenue, open
    /// deals and overdue follow-ups (the branch's manager or an admin),
    /// from the per-owner counters and the monthly revenue roll-ups: a few
    /// reads per rep, however big the branch. A part whose counters are
    /// being recomputed (a cadence policy or an FX rate changed) is
    /// computed the straightforward way meanwhile.
    pub async fn team_report(
        &self,
        caller: &Principal,
        q: &TeamQuery,
    ) -> Result<TeamReport, ServiceError> {
        let (branch, tz) = self.report_branch(caller, &q.branch)?;
        self.team_report_at(&branch, tz, now(), true).await
    }

    /// Whether `branch`'s follow-ups and reports are answered from the
    /// maintained indexes and counters now (no recomputation after a
    /// cadence policy or FX change is pending).
    pub fn counters_ready(&self, branch: &str) -> Result<bool, ServiceError> {
        Ok(self.due_index_valid(branch)? && self.revenue_counts_valid()?)
    }

    /// The team report of `branch` at `at` computed the straightforward way,
    /// from every customer, open deal, signing and task of the branch (what
    /// the counters must add up to: the tests' oracle).
    pub async fn team_report_oracle(
        &self,
        branch: &str,
        at: DateTime<Utc>,
    ) -> Result<TeamReport, ServiceError> {
        let b: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        let tz = b.timezone.parse().unwrap_or(chrono_tz::UTC);
        self.team_report_at(&b, tz, at, false).await
    }

    async fn team_report_at(
        &self,
        branch: &Branch,
        tz: Tz,
        at: DateTime<Utc>,
        counters: bool,
    ) -> Result<TeamReport, ServiceError> {
        let as_of = local_day(at, tz);
        let from = window_from(as_of);
        let mut reps: BTreeMap<String, RepSpread> = BTreeMap::new();
        // Every rep has a line, even with nothing yet.
        for user in self.branch_reps(&branch.id)? {
            reps.entry(user).or_default();
        }
        let counts = match counters {
            true => Some(self.rep_counts(&branch.id)?),
            false => None,
        };
        match &counts {
            Some(counts) => self.spread_from_counters(counts, &mut reps),
            None => self.spread_from_indexes(&branch.id, &mut reps)?,
        }
        let by_owner = match counters && self.revenue_counts_valid()? {
            true => self
                .sum_counters(
                    keys::REVENUE_MONTH,
                    keys::REVENUE_DAY,
                    &branch.id,
                    Some(from),
                    Some(as_of),
                )?
                .into_iter()
                .map(|(owner, v)| (owner, counter::at(&v, 0)))
                .collect(),
            false => {
                let reader = self.clone();
                let id = branch.id.clone();
                tokio::task::spawn_blocking(move || reader.revenue(&id, tz, from, as_of))
                    .await
                    .map_err(|e| crate::store::StoreError::Backend(format!("revenue: {e}")))??
                    .by_owner
            }
        };
        for (owner, r) in by_owner {
            reps.entry(owner).or_default().signed_revenue = r;
        }
        match counts {
            Some(counts) if self.due_index_valid(&branch.id)? => {
                // Owners with a tracked instant (customers with a cadence,
                // open tasks) count theirs before now.
                for (owner, _) in counts.iter().filter(|(_, n)| n.tracked > 0) {
                    let overdue = self.count_before(&branch.id, owner, at)?;
                    if overdue > 0 {
                        let line = reps.entry(shown_owner(owner)).or_default();
                        line.overdue_followups += usize::try_from(overdue).unwrap_or_default();
                    }
                }
            }
            _ => {
                for due in self.due_customers(branch, None, at, at).await? {
                    if due.status == DueStatus::Overdue {
                        let owner = due.owner.unwrap_or_else(|| UNASSIGNED.into());
                        reps.entry(owner).or_default().overdue_followups += 1;
                    }
                }
                for t in self.open_tasks(&branch.id, None, Some(at))? {
                    reps.entry(t.assignee).or_default().overdue_followups += 1;
                }
            }
        }
        let mut total = RepSpread {
            rep: "total".into(),
            ..RepSpread::default()
        };
        let reps: Vec<RepSpread> = reps
            .into_iter()
            .map(|(rep, mut line)| {
                line.rep = rep;
                // The same amount however its terms were added up.
                line.signed_revenue = line.signed_revenue.normalize();
                total.a += line.a;
                total.b += line.b;
                total.c += line.c;
                total.signed_revenue += line.signed_revenue;
                total.open_deals += line.open_deals;
                total.overdue_followups += line.overdue_followups;
                line
            })
            .collect();
        total.signed_revenue = total.signed_revenue.normalize();
        Ok(TeamReport {
            branch: branch.id.clone(),
            as_of,
            window_from: from,
            reps,
            total,
        })
    }

    /// Tiers and open deals of each owner from the per-owner counters.
    fn spread_from_counters(
        &self,
        counts: &BTreeMap<String, RepCount>,
        reps: &mut BTreeMap<String, RepSpread>,
    ) {
        let n = |v: i64| usize::try_from(v).unwrap_or_default();
        for (owner, c) in counts {
            if c.a + c.b + c.c > 0 {
                let line = reps.entry(shown_owner(owner)).or_default();
                line.a += n(c.a);
                line.b += n(c.b);
                line.c += n(c.c);
            }
            if c.open_deals > 0 {
                reps.entry(owner.clone()).or_default().open_deals += n(c.open_deals);
            }
        }
    }

    /// Tiers and open deals of each owner from every entry of the tier and
    /// open-deal indexes of the branch.
    fn spread_from_indexes(
        &self,
        branch: &str,
        reps: &mut BTreeMap<String, RepSpread>,
    ) -> Result<(), ServiceError> {
        let store = self.repo.store();
        let prefix = keys::prefix(keys::IX_CUSTOMER_TIER, &[branch]);
        for (key, owner) in store.scan(&prefix, None, usize::MAX)? {
            let tier = key[prefix.len()..]
                .split(|b| *b == 0)
                .next()
                .unwrap_or_default();
            let line = reps
                .entry(shown_owner(&String::from_utf8_lossy(&owner)))
                .or_default();
            match std::str::from_utf8(tier).ok().and_then(Tier::parse) {
                Some(Tier::A) => line.a += 1,
                Some(Tier::B) => line.b += 1,
                _ => line.c += 1,
            }
        }
        let open_prefix = keys::prefix(keys::IX_DEAL_OPEN, &[branch]);
        for (key, _) in store.scan(&open_prefix, None, usize::MAX)? {
            let owner = key[open_prefix.len()..]
                .split(|b| *b == 0)
                .next()
                .unwrap_or_default();
            let owner = String::from_utf8_lossy(owner).into_owned();
            reps.entry(owner).or_default().open_deals += 1;
        }
        Ok(())
    }

    /// The branch's deals by stage: how many and their value in CNY at
    /// today's rates (anyone in the branch; a rep sees their own deals).
    pub async fn pipeline_report(
        &self,
        caller: &Principal,
        q: &PipelineQuery,
    ) -> Result<PipelineReport, ServiceError> {
        let pipeline = self.pipeline(caller, &q.branch)?;
        let owner = caller.owner_scope(q.owner.as_deref())?;
        let branch: Branch = self.repo.fetch(keys::BRANCH, "branch", &q.branch)?.value;
        let tz: Tz = branch.timezone.parse().unwrap_or(chrono_tz::UTC);
        let as_of = local_day(now(), tz);
        let reader = self.clone();
        // A big branch has many deals: read them off the async workers.
        tokio::task::spawn_blocking(move || reader.stage_values(pipeline, owner, as_of))
            .await
            .map_err(|e| crate::store::StoreError::Backend(format!("pipeline report: {e}")))?
    }

    fn stage_values(
        &self,
        pipeline: crate::domain::pipeline::Pipeline,
        owner: Option<String>,
        as_of: NaiveDate,
    ) -> Result<PipelineReport, ServiceError> {
        let fx = FxTable::new(self.all_fx_rates()?);
        let store = self.repo.store();
        let branch = pipeline.branch.clone();
        let mut stages: Vec<StageValue> = pipeline
            .stages
            .iter()
            .map(|s| StageValue {
                stage: s.id.clone(),
                name: s.name.clone().unwrap_or_else(|| s.id.clone()),
                kind: s.kind,
                deals: 0,
                value: Decimal::ZERO,
                amounts: BTreeMap::new(),
            })
            .collect();
        let mut unconverted = 0;
        // The owner index when one owner is asked for, else the branch's.
        let prefix = match &owner {
            Some(o) => keys::prefix(keys::IX_DEAL_OWNER, &[&branch, o]),
            None => keys::prefix(keys::IX_DEAL_BRANCH, &[&branch]),
        };
        for (_, id) in store.scan(&prefix, None, usize::MAX)? {
            let key = keys::key(keys::DEAL, &[&String::from_utf8_lossy(&id)]);
            // An index entry and its deal are written in one batch: a miss
            // is a deal removed since the scan began.
            let Some(raw) = store.get(&key)? else {
                continue;
            };
            let deal = decode_deal(&key, &raw)?;
            if deal.cancelled_at.is_some() {
                continue;
            }
            let Some(line) = stages.iter_mut().find(|s| s.stage == deal.stage) else {
                continue;
            };
            line.deals += 1;
            *line.amounts.entry(deal.currency.clone()).or_default() += deal.amount_total;
            match fx.to_cny(deal.amount_total, &deal.currency, as_of) {
                Ok(cny) => line.value += cny,
                Err(_) => unconverted += 1,
            }
        }
        for s in &mut stages {
            s.value = s.value.round_dp(2).normalize();
        }
        Ok(PipelineReport {
            branch,
            owner,
            as_of,
            currency: "CNY".into(),
            stages,
            unconverted,
        })
    }

    /// Signed revenue (CNY) of referred customers by referring customer
    /// (the branch's manager or an admin), with the whole report's totals;
    /// with `limit`, one page of referrers. The ranking and the totals come
    /// from the referral counters (the straightforward way while an FX
    /// change is being converted); only the page's referrers have their
    /// referred customers and contracts read.
    pub fn referral_report(
        &self,
        caller: &Principal,
        q: &ReferralQuery,
    ) -> Result<ReferralReport, ServiceError> {
        let (branch, tz) = self.report_branch(caller, &q.branch)?;
        if let (Some(f), Some(t)) = (q.from, q.to) {
            if f > t {
                return Err(ServiceError::invalid("from", "must not be after `to`"));
            }
        }
        let paging = PageRequest {
            limit: q.limit,
            cursor: q.cursor.clone(),
        };
        let limit = match q.limit {
            Some(_) => paging.limit()?,
            None => usize::MAX,
        };
        let after = paging.after()?.map(|raw| decode_cursor(&raw)).transpose()?;
        if !self.revenue_counts_valid()? {
            let whole = self.referral_report_oracle(&branch.id, q.from, q.to)?;
            return Ok(page_of(whole, after, limit));
        }
        let sums = self.sum_counters(
            keys::REFERRAL_MONTH,
            keys::REFERRAL_DAY,
            &branch.id,
            q.from,
            q.to,
        )?;
        let mut totals = ReferralTotals::default();
        let mut unconverted = 0;
        // Every referrer, also those whose customers signed nothing.
        let mut ranking: BTreeMap<String, (Decimal, usize)> = BTreeMap::new();
        let prefix = keys::prefix(keys::REFERRER_COUNT, &[&branch.id]);
        for (k, v) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let referrer = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let referred = counter::at(&counter::decode(Some(&v)), 0);
            totals.referred_customers += usize::try_from(referred).unwrap_or_default();
            ranking.insert(referrer, (Decimal::ZERO, 0));
        }
        for (referrer, v) in sums {
            let (revenue, deals) = (counter::at(&v, 0), counter::at(&v, 1));
            let deals = usize::try_from(deals).unwrap_or_default();
            unconverted += usize::try_from(counter::at(&v, 2)).unwrap_or_default();
            totals.revenue += revenue;
            totals.deals += deals;
            if let Some(line) = ranking.get_mut(&referrer) {
                *line = (revenue.normalize(), deals);
            }
        }
        totals.revenue = totals.revenue.normalize();
        let mut ranking: Vec<(String, Decimal, usize)> =
            ranking.into_iter().map(|(id, (r, d))| (id, r, d)).collect();
        ranking.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let start = after.map_or(0, |(revenue, id)| {
            ranking.partition_point(|(i, r, _)| *r > revenue || (*r == revenue && *i <= id))
        });
        let fx = FxTable::new(self.all_fx_rates()?);
        let mut referrers = Vec::new();
        for (id, revenue, deals) in ranking.iter().skip(start).take(limit) {
            let name = self
                .repo
                .read::<Customer>(&keys::key(keys::CUSTOMER, &[id]))?
                .filter(|c| c.value.branch == branch.id)
                .map(|c| c.value.name)
                .unwrap_or_default();
            let mut referred = Vec::new();
            let rprefix = keys::prefix(keys::IX_CUSTOMER_REFERRER, &[&branch.id, id]);
            for (_, cid) in self.repo.store().scan(&rprefix, None, usize::MAX)? {
                let cid = String::from_utf8_lossy(&cid);
                let Some(c) = self
                    .repo
                    .read::<Customer>(&keys::key(keys::CUSTOMER, &[&cid]))?
                else {
                    continue;
                };
                let (line, _) = self.referred_line(&c.value, tz, &fx, q.from, q.to)?;
                referred.push(line);
            }
            referrers.push(referrer_line(
                id.clone(),
                name,
                referred,
                Some((*revenue, *deals)),
            ));
        }
        let next_cursor = match start.saturating_add(limit) < ranking.len() {
            true => referrers
                .last()
                .map(|r: &Referrer| encode_cursor(r.revenue, &r.customer_id)),
            false => None,
        };
        Ok(ReferralReport {
            branch: branch.id,
            from: q.from,
            to: q.to,
            referrers,
            unconverted,
            totals,
            next_cursor,
        })
    }

    /// The whole referral report of `branch` computed the straightforward
    /// way, from every customer of the branch and every signed contract of
    /// the referred ones (the fallback while an FX change is converted, and
    /// the tests' oracle).
    pub fn referral_report_oracle(
        &self,
        branch: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<ReferralReport, ServiceError> {
        let tz = self.branch_tz(branch)?;
        let fx = FxTable::new(self.all_fx_rates()?);
        let customers = self.customers_of(branch, None)?;
        let names: BTreeMap<&str, &str> = customers
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        let mut by_referrer: BTreeMap<String, Vec<Referred>> = BTreeMap::new();
        let mut unconverted = 0;
        for c in customers.iter().filter(|c| c.referred_by.is_some()) {
            let (referred, left_out) = self.referred_line(c, tz, &fx, from, to)?;
            unconverted += left_out;
            let referrer = c.referred_by.clone().unwrap_or_default();
            by_referrer.entry(referrer).or_default().push(referred);
        }
        let mut totals = ReferralTotals::default();
        let mut referrers: Vec<Referrer> = by_referrer
            .into_iter()
            .map(|(id, referred)| {
                let name = names.get(id.as_str()).copied().unwrap_or_default().into();
                referrer_line(id, name, referred, None)
            })
            .collect();
        for r in &referrers {
            totals.revenue += r.revenue;
            totals.deals += r.deals;
            totals.referred_customers += r.referred.len();
        }
        totals.revenue = totals.revenue.normalize();
        referrers.sort_by(|a, b| {
            b.revenue
                .cmp(&a.revenue)
                .then(a.customer_id.cmp(&b.customer_id))
        });
        Ok(ReferralReport {
            branch: branch.to_string(),
            from,
            to,
            referrers,
            unconverted,
            totals,
            next_cursor: None,
        })
    }

    /// What a referred customer's contracts signed in `[from, to]` add up
    /// to, and how many were left out for want of an FX rate.
    fn referred_line(
        &self,
        c: &Customer,
        tz: Tz,
        fx: &FxTable,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<(Referred, usize), ServiceError> {
        let mut referred = Referred {
            customer_id: c.id.clone(),
            name: c.name.clone(),
            deals: 0,
            revenue: Decimal::ZERO,
        };
        let mut unconverted = 0;
        let prefix = keys::prefix(keys::IX_DEAL_CUSTOMER_SIGNED, &[&c.id]);
        for (k, v) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let d = decode_deal_record(&k, &v)?;
            let (Some(signed), None) = (d.signed_at, d.cancelled_at) else {
                continue;
            };
            let day = local_day(signed, tz);
            if from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
                continue;
            }
            match fx.to_cny(d.amount_total, &d.currency, day) {
                Ok(cny) => {
                    referred.deals += 1;
                    referred.revenue += cny;
                }
                Err(_) => unconverted += 1,
            }
        }
        referred.revenue = referred.revenue.normalize();
        Ok((referred, unconverted))
    }
}

/// A referrer's line: its referred customers highest revenue first, and
/// their sums (or the counters' `sums`, which equal them).
fn referrer_line(
    id: String,
    name: String,
    mut referred: Vec<Referred>,
    sums: Option<(Decimal, usize)>,
) -> Referrer {
    referred.sort_by(|a, b| {
        b.revenue
            .cmp(&a.revenue)
            .then(a.customer_id.cmp(&b.customer_id))
    });
    let (revenue, deals) = sums.unwrap_or_else(|| {
        (
            referred
                .iter()
                .map(|r| r.revenue)
                .sum::<Decimal>()
                .normalize(),
            referred.iter().map(|r| r.deals).sum(),
        )
    });
    Referrer {
        customer_id: id,
        name,
        revenue,
        deals,
        referred,
    }
}

/// The page of a whole report after the referrer at `after`.
fn page_of(
    mut whole: ReferralReport,
    after: Option<(Decimal, String)>,
    limit: usize,
) -> ReferralReport {
    let start = after.map_or(0, |(revenue, id)| {
        whole.referrers.partition_point(|r| {
            r.revenue > revenue || (r.revenue == revenue && r.customer_id <= id)
        })
    });
    let rest = whole.referrers.len().saturating_sub(start);
    whole.referrers = whole
        .referrers
        .into_iter()
        .skip(start)
        .take(limit)
        .collect();
    whole.next_cursor = match rest > limit {
        true => whole
            .referrers
            .last()
            .map(|r| encode_cursor(r.revenue, &r.customer_id)),
        false => None,
    };
    whole
}

/// A referral page's cursor: the last referrer's revenue and id (hex, as
/// [`PageRequest::after`] reads it).
fn encode_cursor(revenue: Decimal, id: &str) -> String {
    hex::encode(format!("{revenue}\0{id}"))
}

/// The revenue and id a referral cursor continues after.
fn decode_cursor(raw: &[u8]) -> Result<(Decimal, String), ServiceError> {
    let bad = || {
        ServiceError::BadParameter(crate::domain::validate::FieldError::new(
            "cursor",
            "is not one this server issued; pass a `next_cursor` from a previous page",
        ))
    };
    let text = std::str::from_utf8(raw).map_err(|_| bad())?;
    let (revenue, id) = text.split_once('\0').ok_or_else(bad)?;
    Ok((revenue.parse().map_err(|_| bad())?, id.to_string()))
}

/// How an owner is shown: `(unassigned)` for none.
fn shown_owner(owner: &str) -> String {
    match owner {
        "" => UNASSIGNED.to_string(),
        o => o.to_string(),
    }
}
