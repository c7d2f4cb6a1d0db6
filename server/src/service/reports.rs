//! Reports for a branch's manager: how key customers, revenue, open deals
//! and overdue follow-ups spread across the reps (docs/business-rules.md §6), and what
//! signed revenue each referring customer brought (docs/business-rules.md §4).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::repo::{decode_deal, decode_deal_record};
use super::tiering::window_from;
use super::{now, ServiceError, Services};
use crate::accounts::cadence::DueStatus;
use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::customer::Tier;
use crate::domain::pipeline::StageKind;
use crate::incentive::period::local_day;
use crate::incentive::FxTable;
use crate::store::keys;

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
    /// Referrers, highest revenue first.
    pub referrers: Vec<Referrer>,
    /// Contracts left out: no FX rate in force on their signing day.
    pub unconverted: usize,
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
    /// deals and overdue follow-ups (the branch's manager or an admin).
    pub async fn team_report(
        &self,
        caller: &Principal,
        q: &TeamQuery,
    ) -> Result<TeamReport, ServiceError> {
        let (branch, tz) = self.report_branch(caller, &q.branch)?;
        let at = now();
        let as_of = local_day(at, tz);
        let from = window_from(as_of);
        let mut reps: BTreeMap<String, RepSpread> = BTreeMap::new();
        // Every rep has a line, even with nothing yet.
        for user in self.branch_reps(&branch.id)? {
            reps.entry(user).or_default();
        }
        let store = self.repo.store();
        let prefix = keys::prefix(keys::IX_CUSTOMER_TIER, &[&branch.id]);
        for (key, owner) in store.scan(&prefix, None, usize::MAX)? {
            let tier = key[prefix.len()..]
                .split(|b| *b == 0)
                .next()
                .unwrap_or_default();
            let owner = match String::from_utf8_lossy(&owner).into_owned() {
                o if o.is_empty() => UNASSIGNED.to_string(),
                o => o,
            };
            let line = reps.entry(owner).or_default();
            match std::str::from_utf8(tier).ok().and_then(Tier::parse) {
                Some(Tier::A) => line.a += 1,
                Some(Tier::B) => line.b += 1,
                _ => line.c += 1,
            }
        }
        let open_prefix = keys::prefix(keys::IX_DEAL_OPEN, &[&branch.id]);
        for (key, _) in store.scan(&open_prefix, None, usize::MAX)? {
            let owner = key[open_prefix.len()..]
                .split(|b| *b == 0)
                .next()
                .unwrap_or_default();
            let owner = String::from_utf8_lossy(owner).into_owned();
            reps.entry(owner).or_default().open_deals += 1;
        }
        let revenue = {
            let reader = self.clone();
            let id = branch.id.clone();
            tokio::task::spawn_blocking(move || reader.revenue(&id, tz, from, as_of))
                .await
                .map_err(|e| crate::store::StoreError::Backend(format!("revenue: {e}")))??
        };
        for (owner, r) in revenue.by_owner {
            reps.entry(owner).or_default().signed_revenue = r;
        }
        for due in self.due_customers(&branch, None, at, at).await? {
            if due.status == DueStatus::Overdue {
                let owner = due.owner.unwrap_or_else(|| UNASSIGNED.into());
                reps.entry(owner).or_default().overdue_followups += 1;
            }
        }
        for t in self.open_tasks(&branch.id, None, Some(at))? {
            reps.entry(t.assignee).or_default().overdue_followups += 1;
        }
        let mut total = RepSpread {
            rep: "total".into(),
            ..RepSpread::default()
        };
        let reps: Vec<RepSpread> = reps
            .into_iter()
            .map(|(rep, mut line)| {
                line.rep = rep;
                total.a += line.a;
                total.b += line.b;
                total.c += line.c;
                total.signed_revenue += line.signed_revenue;
                total.open_deals += line.open_deals;
                total.overdue_followups += line.overdue_followups;
                line
            })
            .collect();
        Ok(TeamReport {
            branch: branch.id,
            as_of,
            window_from: from,
            reps,
            total,
        })
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
    /// (the branch's manager or an admin).
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
        let fx = FxTable::new(self.all_fx_rates()?);
        let customers = self.customers_of(&branch.id, None)?;
        let names: BTreeMap<&str, &str> = customers
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        let mut by_referrer: BTreeMap<String, Vec<Referred>> = BTreeMap::new();
        let mut unconverted = 0;
        for c in customers.iter().filter(|c| c.referred_by.is_some()) {
            let mut referred = Referred {
                customer_id: c.id.clone(),
                name: c.name.clone(),
                deals: 0,
                revenue: Decimal::ZERO,
            };
            let prefix = keys::prefix(keys::IX_DEAL_CUSTOMER_SIGNED, &[&c.id]);
            for (k, v) in self.repo.store().scan(&prefix, None, usize::MAX)? {
                let d = decode_deal_record(&k, &v)?;
                let (Some(signed), None) = (d.signed_at, d.cancelled_at) else {
                    continue;
                };
                let day = local_day(signed, tz);
                if q.from.is_some_and(|f| day < f) || q.to.is_some_and(|t| day > t) {
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
            let referrer = c.referred_by.clone().unwrap_or_default();
            by_referrer.entry(referrer).or_default().push(referred);
        }
        let mut referrers: Vec<Referrer> = by_referrer
            .into_iter()
            .map(|(id, mut referred)| {
                referred.sort_by(|a, b| {
                    b.revenue
                        .cmp(&a.revenue)
                        .then(a.customer_id.cmp(&b.customer_id))
                });
                Referrer {
                    name: names.get(id.as_str()).copied().unwrap_or_default().into(),
                    revenue: referred.iter().map(|r| r.revenue).sum(),
                    deals: referred.iter().map(|r| r.deals).sum(),
                    customer_id: id,
                    referred,
                }
            })
            .collect();
        referrers.sort_by(|a, b| {
            b.revenue
                .cmp(&a.revenue)
                .then(a.customer_id.cmp(&b.customer_id))
        });
        Ok(ReferralReport {
            branch: branch.id,
            from: q.from,
            to: q.to,
            referrers,
            unconverted,
        })
    }
}
