//! Builds the records a transition's hooks receive, reading what they need
//! from the store (the plain conversions are `policy::hook_values`).

use crate::domain::brand::Brand;
use crate::domain::deal::Deal;
use crate::domain::record::Record;
use crate::policy::hook_values::{json_name, ts};
use crate::policy::hooks::{BranchInfo, DealInfo, LineInfo, RecordInfo};
use crate::service::{ServiceError, Services};
use crate::store::keys;

/// How many of a customer's latest records a hook sees.
pub const RECORDS_FOR_HOOKS: usize = 50;

/// The branch record, for hooks (time zone), read once per branch.
pub fn branch_info(services: &Services, branch: &str) -> Result<BranchInfo, ServiceError> {
    services.branch_for_hooks(branch)
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
