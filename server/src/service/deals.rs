//! Deals: opened by the branch, owned by a rep, indexed by branch, owner,
//! stage and customer; every change leaves a history entry in the same batch.

use std::collections::HashSet;

use rust_decimal::Decimal;
use serde_json::json;

use super::customers::{check_version, owner_change_reason};
use super::first_sales::{brand_index_keys, sold_at};
use super::repo::{encode, Source, Stored};
use super::revenue_counts::{revenue_view, stage_revenue, stage_revenue_mark, RevenueUpdate};
use super::{
    check_business_time, events, now, stage_tier_mark, Page, PageRequest, ServiceError, Services,
    MAX_RETRIES,
};
use crate::auth::{Denied, Principal};
use crate::domain::currency::is_iso_currency;
use crate::domain::deal::{
    check_attribute, CancelRequest, Deal, DealPatch, Line, NewDeal, MAX_ATTRIBUTES,
};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::history::{HistoryAction, HistoryEntry};
use crate::domain::money::check_amount;
use crate::domain::pipeline::StageKind;
use crate::domain::token::Role;
use crate::domain::validate;
use crate::incentive::inputs::DealRecord;
use crate::store::{keys, Batch, StoreError};

pub use crate::domain::deal::{MAX_LINES, MAX_NEEDS};

/// Filters of `GET /v1/deals`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DealFilter {
    /// Only this branch.
    pub branch: Option<String>,
    /// Only this owner (reps: always themselves).
    pub owner: Option<String>,
    /// Only this stage.
    pub stage: Option<String>,
    /// Only this customer's deals.
    pub customer_id: Option<String>,
    /// Page size.
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}

/// The key of a deal's history entry `seq` (the version it produced).
fn history_key(deal: &str, seq: u64) -> Vec<u8> {
    keys::key(keys::DEAL_HISTORY, &[deal, &format!("{seq:020}")])
}

/// The key of a `veto` entry: under the version whose move was refused,
/// after that version's own entry and before the next one's, in the order
/// of the refusals (`id` is a fresh server id, which sorts by time).
pub(crate) fn veto_key(deal: &str, version: u64, id: &str) -> Vec<u8> {
    keys::key(keys::DEAL_HISTORY, &[deal, &format!("{version:020}"), id])
}

/// Writes a deal, its history entry and its indexes in step with `old`.
/// `revenue` is its new contribution to the revenue counters
/// ([`Services::revenue_change`]), required when the write moves it;
/// without one such a write marks the counters for a recount.
pub(crate) fn stage_deal(
    batch: &mut Batch,
    old: Option<&Stored<Deal>>,
    new: &Deal,
    entry: &HistoryEntry,
    revenue: Option<&RevenueUpdate>,
) {
    match revenue {
        Some(u) => stage_revenue(batch, u),
        None if old.is_some_and(|o| revenue_view(&o.value) == revenue_view(new)) => {}
        None if old.is_none() && sold_at(new).is_none() => {}
        None => {
            debug_assert!(false, "deal {} changed revenue without its update", new.id);
            stage_revenue_mark(batch, &format!("unasked {}@{}", new.id, new.version));
        }
    }
    let key = keys::key(keys::DEAL, &[&new.id]);
    batch.expect(key.clone(), old.map(|o| o.raw.as_slice()));
    batch.put(key, new.to_stored());
    batch.put(history_key(&new.id, entry.seq), encode(entry));
    let id = new.id.as_bytes();
    let (b, o, s) = (&new.branch, &new.owner, &new.stage);
    match old.map(|o| &o.value) {
        None => {
            batch.put(keys::key(keys::IX_DEAL_BRANCH, &[b, &new.id]), id);
            batch.put(
                keys::key(keys::IX_DEAL_CUSTOMER, &[&new.customer_id, &new.id]),
                id,
            );
            batch.put(keys::key(keys::IX_DEAL_OWNER, &[b, o, &new.id]), id);
            batch.put(keys::key(keys::IX_DEAL_STAGE, &[b, s, &new.id]), id);
        }
        Some(prev) => {
            if prev.owner != new.owner {
                batch.delete(keys::key(keys::IX_DEAL_OWNER, &[b, &prev.owner, &new.id]));
                batch.put(keys::key(keys::IX_DEAL_OWNER, &[b, o, &new.id]), id);
            }
            if prev.stage != new.stage {
                batch.delete(keys::key(keys::IX_DEAL_STAGE, &[b, &prev.stage, &new.id]));
                batch.put(keys::key(keys::IX_DEAL_STAGE, &[b, s, &new.id]), id);
            }
        }
    }
    let open = |d: &Deal| (d.stage_kind == StageKind::Open).then(|| d.owner.clone());
    let (was, is) = (old.and_then(|o| open(&o.value)), open(new));
    super::rep_counts::stage_open_deal(batch, b, was.as_deref(), is.as_deref());
    if was != is {
        if let Some(o) = was {
            batch.delete(keys::key(keys::IX_DEAL_OPEN, &[b, &o, &new.id]));
        }
        if let Some(o) = is {
            batch.put(keys::key(keys::IX_DEAL_OPEN, &[b, &o, &new.id]), id);
        }
    }
    stage_signing_indexes(batch, old.map(|o| &o.value), new);
}

/// Writes a deal's entries in the signing indexes (by branch and by
/// customer; by brand while it is not cancelled). Those by branch and
/// customer carry the deal as settlements read it, so they are rewritten
/// with every change of a signed deal.
pub(crate) fn stage_signing_indexes(batch: &mut Batch, old: Option<&Deal>, new: &Deal) {
    let was = old.map(brand_index_keys).unwrap_or_default();
    let is = brand_index_keys(new);
    for k in was.difference(&is) {
        batch.delete(k.clone());
    }
    for k in is.difference(&was) {
        batch.put(k.clone(), new.id.as_bytes());
    }
    let (b, c) = (&new.branch, &new.customer_id);
    if let Some(t) = old
        .and_then(|o| o.signed_at)
        .filter(|t| Some(*t) != new.signed_at)
    {
        let t = keys::time(&t);
        batch.delete(keys::key(keys::IX_DEAL_SIGNED, &[b, &t, &new.id]));
        batch.delete(keys::key(keys::IX_DEAL_CUSTOMER_SIGNED, &[c, &t, &new.id]));
    }
    if let Some(t) = &new.signed_at {
        let t = keys::time(t);
        let record = DealRecord::from(new).encode();
        batch.put(
            keys::key(keys::IX_DEAL_SIGNED, &[b, &t, &new.id]),
            record.clone(),
        );
        batch.put(
            keys::key(keys::IX_DEAL_CUSTOMER_SIGNED, &[c, &t, &new.id]),
            record,
        );
    }
}

/// The fields a history entry records as changed.
fn changes_of(entry: &HistoryEntry) -> Vec<String> {
    entry
        .changes
        .as_ref()
        .and_then(|c| c.as_object())
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default()
}

/// The events of a change of `old` into `new`: `owner_changed` (with the
/// written `reason`) when the owner changed, `deal_changed` naming the
/// other fields that did. Both are about the deal as it now is (its new
/// owner's).
pub(crate) fn add_change_events(
    batch: &mut Batch,
    old: &Deal,
    new: &Deal,
    fields: &[String],
    by: &str,
    reason: Option<&str>,
) {
    let resource = ResourceRef::deal(new);
    if old.owner != new.owner {
        events::add(
            batch,
            EventKind::OwnerChanged,
            resource.clone(),
            by,
            json!({"deal": new.id, "from": old.owner, "to": new.owner, "reason": reason,
                   "version": new.version}),
        );
    }
    let others: Vec<&String> = fields.iter().filter(|f| *f != "owner").collect();
    if !others.is_empty() {
        events::add(
            batch,
            EventKind::DealChanged,
            resource,
            by,
            json!({"deal": new.id, "fields": others, "version": new.version}),
        );
    }
}

/// What of a signed contract only its branch's managers and admins change,
/// with a reason: its money and when it was signed.
const SIGNED_MONEY: [&str; 4] = ["lines", "currency", "prepayment_ratio", "signed_at"];

/// Refuses a change of a signed contract's money (`changes` names the
/// changed fields) by a rep (403), or by a manager or admin without a
/// reason (422 naming `reason`).
fn check_signed_money(
    caller: &Principal,
    deal: &Deal,
    changes: &serde_json::Map<String, serde_json::Value>,
    reason: Option<&str>,
) -> Result<(), ServiceError> {
    let money: Vec<&str> = SIGNED_MONEY
        .into_iter()
        .filter(|f| changes.contains_key(*f))
        .collect();
    if deal.signed_at.is_none() || money.is_empty() {
        return Ok(());
    }
    if caller.role == Role::Rep {
        return Err(Denied(format!(
            "a signed contract's money ({}) is changed only by a manager of `{}` or an admin, with a reason",
            money.join(", "),
            deal.branch
        ))
        .into());
    }
    if reason.is_none() {
        return Err(ServiceError::invalid(
            "reason",
            format!(
                "is required to change a signed contract's {} (kept in its history)",
                money.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A corrected signing time: only of a signed contract, not before it was
/// opened, not after its cancellation.
fn check_signing_time(
    deal: &Deal,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, ServiceError> {
    if deal.signed_at.is_none() {
        return Err(ServiceError::invalid(
            "signed_at",
            "only a signed contract has a signing time; a deal is signed by a transition",
        ));
    }
    if at < deal.opened_at {
        return Err(ServiceError::invalid(
            "signed_at",
            format!(
                "must not be before the deal was opened ({})",
                deal.opened_at.to_rfc3339()
            ),
        ));
    }
    if deal.cancelled_at.is_some_and(|c| at > c) {
        return Err(ServiceError::invalid(
            "signed_at",
            "must not be after the contract's cancellation",
        ));
    }
    Ok(at)
}

impl Services {
    fn check_lines(&self, lines: &[Line]) -> Result<Vec<Line>, ServiceError> {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(ServiceError::invalid(
                "lines",
                format!("must have 1 to {MAX_LINES} lines"),
            ));
        }
        let mut known = HashSet::new();
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let field = |f: &str| format!("lines[{i}].{f}");
                if !known.contains(&l.brand) {
                    if !crate::domain::ids::is_slug(&l.brand)
                        || !self.repo.exists(keys::BRAND, &l.brand)?
                    {
                        return Err(ServiceError::UnknownReference {
                            field: field("brand"),
                            kind: "brand",
                            id: l.brand.clone(),
                        });
                    }
                    known.insert(l.brand.clone());
                }
                Ok(Line {
                    brand: l.brand.clone(),
                    product: validate::name(&field("product"), &l.product)?,
                    amount: check_amount(l.amount, false)
                        .map_err(|r| ServiceError::invalid(field("amount"), r))?,
                    cost: check_amount(l.cost, true)
                        .map_err(|r| ServiceError::invalid(field("cost"), r))?,
                })
            })
            .collect()
    }

    fn check_deal_fields(
        currency: &str,
        needs: Option<&[String]>,
        prepayment: Option<Decimal>,
    ) -> Result<Vec<String>, ServiceError> {
        if !is_iso_currency(currency) {
            return Err(ServiceError::invalid(
                "currency",
                format!("`{currency}` is not an ISO 4217 code"),
            ));
        }
        if let Some(p) = prepayment {
            if p < Decimal::ZERO || p > Decimal::ONE {
                return Err(ServiceError::invalid(
                    "prepayment_ratio",
                    "must be between 0 and 1",
                ));
            }
        }
        let needs = needs.unwrap_or_default();
        if needs.len() > MAX_NEEDS {
            return Err(ServiceError::invalid(
                "needs",
                format!("must list at most {MAX_NEEDS} needs"),
            ));
        }
        needs
            .iter()
            .enumerate()
            .map(|(i, n)| {
                validate::text(&format!("needs[{i}]"), n, validate::MAX_TEXT).map_err(Into::into)
            })
            .collect()
    }

    /// Opens a deal for a customer of the caller's branch.
    pub async fn create_deal(
        &self,
        caller: &Principal,
        req: NewDeal,
    ) -> Result<Deal, ServiceError> {
        let customer = self
            .repo
            .read::<crate::domain::customer::Customer>(&keys::key(
                keys::CUSTOMER,
                &[&req.customer_id],
            ))?;
        let customer = customer.ok_or_else(|| ServiceError::UnknownReference {
            field: "customer_id".into(),
            kind: "customer",
            id: req.customer_id.clone(),
        })?;
        let branch = customer.value.branch;
        let owner = validate::user("owner", &req.owner)?;
        caller.require_owned(&branch, &owner)?;
        let needs =
            Self::check_deal_fields(&req.currency, req.needs.as_deref(), req.prepayment_ratio)?;
        let lines = self.check_lines(&req.lines)?;
        let opened_at = check_business_time("opened_at", req.opened_at)?;
        let pipeline = self.pipeline_of(&branch)?;
        let now = now();
        let mut deal = Deal {
            id: self.repo.new_id("deal")?,
            branch,
            customer_id: req.customer_id,
            title: validate::name("title", &req.title)?,
            owner,
            currency: req.currency,
            needs,
            prepayment_ratio: req.prepayment_ratio.map(|p| p.normalize()),
            opened_at,
            lines,
            amount_total: Decimal::ZERO,
            cost_total: Decimal::ZERO,
            stage: pipeline.initial().to_string(),
            stage_entered_at: opened_at,
            stage_kind: crate::domain::pipeline::StageKind::Open,
            stages_passed: vec![pipeline.initial().to_string()],
            signed_at: None,
            lost_at: None,
            new_brands: Vec::new(),
            cancelled_at: None,
            cancel_reason: None,
            attributes: Default::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        deal.retotal();
        let entry = HistoryEntry {
            to: Some(deal.stage.clone()),
            ..HistoryEntry::new(1, HistoryAction::Created, opened_at, now, &caller.user)
        };
        let mut batch = Batch::new();
        stage_deal(&mut batch, None, &deal, &entry, None);
        events::add(
            &mut batch,
            EventKind::DealCreated,
            ResourceRef::deal(&deal),
            &caller.user,
            json!({"customer": deal.customer_id, "title": deal.title, "stage": deal.stage,
                   "version": deal.version}),
        );
        self.repo.commit(batch).await?;
        Ok(deal)
    }

    /// Reads a deal the caller may see.
    pub(crate) fn visible_deal(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<Stored<Deal>, ServiceError> {
        let d = self.repo.fetch_deal(id)?;
        caller.require_owned(&d.value.branch, &d.value.owner)?;
        Ok(d)
    }

    /// One deal.
    pub fn deal(&self, caller: &Principal, id: &str) -> Result<Deal, ServiceError> {
        Ok(self.visible_deal(caller, id)?.value)
    }

    /// Lists deals in the caller's scope through the narrowest index.
    pub fn list_deals(
        &self,
        caller: &Principal,
        f: &DealFilter,
    ) -> Result<Page<Deal>, ServiceError> {
        let page = PageRequest {
            limit: f.limit,
            cursor: f.cursor.clone(),
        };
        let branch = caller.list_scope(f.branch.as_deref())?;
        let owner = caller.owner_scope(f.owner.as_deref())?;
        let index = |ix: &str, parts: &[&str]| Source::Index {
            prefix: keys::prefix(ix, parts),
            tag: keys::DEAL,
        };
        let source = match (&branch, &owner, &f.stage, &f.customer_id) {
            (_, _, _, Some(c)) => index(keys::IX_DEAL_CUSTOMER, &[c]),
            (Some(b), Some(o), _, _) => index(keys::IX_DEAL_OWNER, &[b, o]),
            (Some(b), None, Some(s), _) => index(keys::IX_DEAL_STAGE, &[b, s]),
            (Some(b), None, None, _) => index(keys::IX_DEAL_BRANCH, &[b]),
            (None, _, _, _) => Source::Primary(keys::prefix(keys::DEAL, &[])),
        };
        let stage = f.stage.clone();
        self.repo.list_deals(source, &page, move |d: &Deal| {
            branch.as_ref().is_none_or(|b| &d.branch == b)
                && owner.as_ref().is_none_or(|o| &d.owner == o)
                && stage.as_ref().is_none_or(|s| &d.stage == s)
        })
    }

    /// Changes a deal's fields (not its stage); the changes go to its history.
    pub async fn patch_deal(
        &self,
        caller: &Principal,
        id: &str,
        patch: DealPatch,
        if_match: Option<u64>,
    ) -> Result<Deal, ServiceError> {
        // Scope first: an out-of-scope caller learns nothing from validation.
        self.visible_deal(caller, id)?;
        if let Some(attributes) = &patch.attributes {
            if caller.role == Role::Rep {
                return Err(Denied(
                    "deal attributes are set by managers and policies (guards read them as approvals)"
                        .into(),
                )
                .into());
            }
            for (key, value) in attributes {
                check_attribute(key, value.as_deref().unwrap_or(""))
                    .map_err(|e| ServiceError::invalid("attributes", e))?;
            }
        }
        let lines = patch
            .lines
            .as_deref()
            .map(|l| self.check_lines(l))
            .transpose()?;
        let reason = validate::opt_text("reason", patch.reason.as_deref())?;
        let signed_at = patch
            .signed_at
            .map(|t| check_business_time("signed_at", Some(t)))
            .transpose()?;
        for _ in 0..MAX_RETRIES {
            let old = self.visible_deal(caller, id)?;
            check_version(if_match, old.value.version)?;
            let mut d = old.value.clone();
            let mut changes = serde_json::Map::new();
            let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
                if from != to {
                    changes.insert(field.into(), json!({"from": from, "to": to}));
                }
            };
            if let Some(t) = &patch.title {
                d.title = validate::name("title", t)?;
                note("title", json!(old.value.title), json!(d.title));
            }
            if let Some(o) = &patch.owner {
                d.owner = validate::user("owner", o)?;
                // Naming an owner is a claim even when it changes nothing.
                caller.require_owner_change(
                    "deal",
                    &d.branch,
                    Some(&old.value.owner),
                    Some(&d.owner),
                )?;
            }
            let owner_reason = if d.owner != old.value.owner {
                note("owner", json!(old.value.owner), json!(d.owner));
                Some(owner_change_reason(
                    caller,
                    "deal",
                    &d.branch,
                    Some(&old.value.owner),
                    Some(&d.owner),
                    patch.reason.as_deref(),
                )?)
            } else {
                None
            };
            let currency = patch.currency.as_deref().unwrap_or(&d.currency).to_string();
            let prepayment = patch.prepayment_ratio.unwrap_or(d.prepayment_ratio);
            let needs = Self::check_deal_fields(
                &currency,
                patch.needs.as_deref().or(Some(d.needs.as_slice())),
                prepayment,
            )?;
            note("currency", json!(d.currency), json!(currency));
            note("needs", json!(d.needs), json!(needs));
            note(
                "prepayment_ratio",
                json!(d.prepayment_ratio),
                json!(prepayment.map(|p| p.normalize())),
            );
            d.currency = currency;
            d.needs = needs;
            d.prepayment_ratio = prepayment.map(|p| p.normalize());
            if let Some(lines) = &lines {
                note("lines", json!(d.lines), json!(lines));
                d.lines = lines.clone();
                d.retotal();
            }
            if let Some(t) = signed_at {
                d.signed_at = Some(check_signing_time(&old.value, t)?);
                // A signed deal entered its won stage when it was signed.
                d.stage_entered_at = t;
                note("signed_at", json!(old.value.signed_at), json!(d.signed_at));
            }
            if let Some(attributes) = &patch.attributes {
                for (key, value) in attributes {
                    match value {
                        Some(v) => d.attributes.insert(key.clone(), v.clone()),
                        None => d.attributes.remove(key),
                    };
                }
                note(
                    "attributes",
                    json!(old.value.attributes),
                    json!(d.attributes),
                );
                if d.attributes.len() > MAX_ATTRIBUTES {
                    return Err(ServiceError::invalid(
                        "attributes",
                        format!("a deal carries at most {MAX_ATTRIBUTES} attributes"),
                    ));
                }
            }

            if changes.is_empty() {
                return Ok(old.value);
            }
            check_signed_money(caller, &old.value, &changes, reason.as_deref())?;
            let now = now();
            d.version += 1;
            d.updated_at = now;
            let entry = match &owner_reason {
                Some(_) => HistoryEntry {
                    from: Some(old.value.owner.clone()),
                    to: Some(d.owner.clone()),
                    reason: reason.clone(),
                    changes: Some(changes.into()),
                    ..HistoryEntry::new(
                        d.version,
                        HistoryAction::OwnerChanged,
                        now,
                        now,
                        &caller.user,
                    )
                },
                None => HistoryEntry {
                    reason: reason.clone(),
                    changes: Some(changes.into()),
                    ..HistoryEntry::new(d.version, HistoryAction::Updated, now, now, &caller.user)
                },
            };
            let mut batch = Batch::new();
            self.stage_first_sales(&mut batch, Some(&old.value), &mut d, &caller.user)?;
            let revenue = self.revenue_change(Some(&old.value), &d)?;
            stage_deal(&mut batch, Some(&old), &d, &entry, revenue.as_ref());
            add_change_events(
                &mut batch,
                &old.value,
                &d,
                &changes_of(&entry),
                &caller.user,
                entry.reason.as_deref(),
            );
            // A signed contract's amount, currency and signing time count in
            // its customer's revenue, hence in the branch's tiers.
            let revenue_moved = d.signed_at.is_some()
                && (d.amount_total != old.value.amount_total
                    || d.currency != old.value.currency
                    || d.signed_at != old.value.signed_at);
            if revenue_moved {
                stage_tier_mark(
                    &mut batch,
                    &d.branch,
                    "deal changed",
                    &format!("{}@{}", d.id, d.version),
                );
            }
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    if revenue_moved {
                        self.tiers_changed(&d.branch);
                    }
                    return Ok(d);
                }
            }
        }
        Err(ServiceError::Contended)
    }

    /// Cancels a signed contract (its branch's manager, or an admin). The
    /// deal stays signed, with `cancelled_at` and the reason; the next
    /// settlement reverses what approved settlements paid for it.
    pub async fn cancel_deal(
        &self,
        caller: &Principal,
        id: &str,
        req: CancelRequest,
        if_match: Option<u64>,
    ) -> Result<Deal, ServiceError> {
        let deal = self.visible_deal(caller, id)?;
        let branch = &deal.value.branch;
        caller.require_manager_of(branch).map_err(|_| {
            Denied(format!(
                "a signed contract is cancelled only by a manager of `{branch}` or an admin, with a reason"
            ))
        })?;
        let reason = validate::name("reason", &req.reason)?;
        let at = check_business_time("at", req.at)?;
        for _ in 0..MAX_RETRIES {
            let old = self.visible_deal(caller, id)?;
            check_version(if_match, old.value.version)?;
            let Some(signed) = old.value.signed_at else {
                return Err(ServiceError::WrongState {
                    code: "invalid_state",
                    message: format!(
                        "deal {id} is not signed; only a signed contract can be cancelled"
                    ),
                });
            };
            if old.value.cancelled_at.is_some() {
                return Err(ServiceError::WrongState {
                    code: "invalid_state",
                    message: format!("deal {id} is already cancelled"),
                });
            }
            if at < signed {
                return Err(ServiceError::invalid(
                    "at",
                    "must not be before the signing",
                ));
            }
            let now = now();
            let mut d = old.value.clone();
            d.cancelled_at = Some(at);
            d.cancel_reason = Some(reason.clone());
            d.version += 1;
            d.updated_at = now;
            let entry = HistoryEntry {
                note: Some(reason.clone()),
                reason: Some(reason.clone()),
                ..HistoryEntry::new(d.version, HistoryAction::Cancelled, at, now, &caller.user)
            };
            let mut batch = Batch::new();
            self.stage_first_sales(&mut batch, Some(&old.value), &mut d, &caller.user)?;
            let revenue = self.revenue_change(Some(&old.value), &d)?;
            stage_deal(&mut batch, Some(&old), &d, &entry, revenue.as_ref());
            events::add(
                &mut batch,
                EventKind::DealCancelled,
                ResourceRef::deal(&d),
                &caller.user,
                json!({"deal": d.id, "reason": reason, "at": crate::domain::time::format(&at), "by": caller.user,
                       "version": d.version}),
            );
            stage_tier_mark(
                &mut batch,
                &d.branch,
                "deal cancelled",
                &format!("{}@{}", d.id, d.version),
            );
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => other?,
            }
            self.tiers_changed(&d.branch);
            return Ok(d);
        }
        Err(ServiceError::Contended)
    }

    /// A deal's history, oldest first.
    pub fn deal_history(
        &self,
        caller: &Principal,
        id: &str,
        page: &PageRequest,
    ) -> Result<Page<HistoryEntry>, ServiceError> {
        self.visible_deal(caller, id)?;
        self.repo.list(
            Source::Primary(keys::prefix(keys::DEAL_HISTORY, &[id])),
            page,
            |_: &HistoryEntry| true,
        )
    }
}
