//! Builds the records hooks receive from the server's own records. Times are
//! rendered as RFC 3339 UTC with milliseconds, so they compare as strings.

use chrono::{DateTime, Utc};

use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::brand::Brand;
use crate::domain::customer::Customer;
use crate::domain::deal::Deal;
use crate::domain::record::Record;
use crate::policy::hooks::{ActorInfo, BranchInfo, CustomerInfo, DealInfo, LineInfo, RecordInfo};
use crate::service::{ServiceError, Services};
use crate::store::keys;

/// How many of a customer's latest records a hook sees.
pub const RECORDS_FOR_HOOKS: usize = 50;

/// A time as hooks see it (the same text as in keys: it sorts by time).
pub fn ts(t: &DateTime<Utc>) -> String {
    keys::time(t)
}

fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The branch record, for hooks (time zone); read once per branch (a
/// branch never changes once created).
pub fn branch_info(services: &Services, branch: &str) -> Result<BranchInfo, ServiceError> {
    let cache = &services.pipelines.branch_infos;
    if let Some(info) = cache.read().get(branch) {
        return Ok(info.clone());
    }
    let b: Branch = services.repo.fetch(keys::BRANCH, "branch", branch)?.value;
    let info = BranchInfo {
        id: b.id,
        timezone: b.timezone,
    };
    cache.write().insert(branch.to_string(), info.clone());
    Ok(info)
}

/// A deal, with whether each line's brand is still new.
pub fn deal_info(services: &Services, d: &Deal) -> Result<DealInfo, ServiceError> {
    let mut new = std::collections::HashSet::new();
    for l in &d.lines {
        if !new.contains(l.brand.as_str())
            && services
                .repo
                .read::<Brand>(&keys::key(keys::BRAND, &[&l.brand]))?
                .is_some_and(|b| b.value.new)
        {
            new.insert(l.brand.as_str());
        }
    }
    Ok(DealInfo {
        id: d.id.clone(),
        title: d.title.clone(),
        owner: d.owner.clone(),
        currency: d.currency.clone(),
        needs: d.needs.clone(),
        prepayment_ratio: d.prepayment_ratio,
        opened_at: ts(&d.opened_at),
        stage: d.stage.clone(),
        stages_passed: d.stages_passed.clone(),
        signed_at: d.signed_at.as_ref().map(ts),
        lines: d
            .lines
            .iter()
            .map(|l| LineInfo {
                brand: l.brand.clone(),
                brand_new: new.contains(l.brand.as_str()),
                product: l.product.clone(),
                amount: l.amount,
                cost: l.cost,
            })
            .collect(),
        amount_total: d.amount_total,
        cost_total: d.cost_total,
        attributes: d.attributes.clone(),
    })
}

/// A customer, for hooks.
pub fn customer_info(c: &Customer) -> CustomerInfo {
    CustomerInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        segment: json_name(&c.segment),
        source: json_name(&c.source),
        tier: json_name(&c.tier),
        owner: c.owner.clone(),
        referred_by: c.referred_by.clone(),
        last_contact_at: c.last_contact_at.as_ref().map(ts),
    }
}

/// A customer's latest records, oldest first.
pub fn records_info(services: &Services, customer: &str) -> Result<Vec<RecordInfo>, ServiceError> {
    let prefix = keys::prefix(keys::IX_RECORD_CUSTOMER, &[customer]);
    let mut out = Vec::new();
    for (_, id) in services
        .repo
        .store()
        .scan_last(&prefix, RECORDS_FOR_HOOKS)?
    {
        let id = String::from_utf8_lossy(&id);
        if let Some(r) = services
            .repo
            .read::<Record>(&keys::key(keys::RECORD, &[&id]))?
        {
            let r = r.value;
            out.push(RecordInfo {
                at: ts(&r.at),
                by: r.by,
                kind: json_name(&r.kind),
                summary: r.summary,
                has_problems: r.problems.is_some(),
            });
        }
    }
    Ok(out)
}

/// The caller, for hooks.
pub fn actor_info(p: &Principal) -> ActorInfo {
    ActorInfo {
        user: p.user.clone(),
        role: json_name(&p.role),
    }
}
