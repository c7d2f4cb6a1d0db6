//! Deals: opened by the branch, owned by a rep, indexed by branch, owner,
//! stage and customer; every change leaves a history entry in the same batch.

use std::collections::HashSet;

use rust_decimal::Decimal;
use serde_json::json;

use super::customers::check_version;
use super::repo::{encode, Source, Stored};
use super::{
    check_business_time, now, stage_tier_mark, Page, PageRequest, ServiceError, Services,
    MAX_RETRIES,
};
use crate::auth::{Denied, Principal};
use crate::domain::currency::is_iso_currency;
use crate::domain::customer::Customer;
use crate::domain::deal::{
    check_attribute, CancelRequest, Deal, DealPatch, Line, NewDeal, MAX_ATTRIBUTES,
};
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

/// Writes a deal, its history entry and its indexes in step with `old`.
pub(crate) fn stage_deal(
    batch: &mut Batch,
    old: Option<&Stored<Deal>>,
    new: &Deal,
    entry: &HistoryEntry,
) {
    let key = keys::key(keys::DEAL, &[&new.id]);
    batch.expect(key.clone(), old.map(|o| o.raw.as_slice()));
    batch.put(key, new.to_stored());
    batch.put(
        keys::key(
            keys::DEAL_HISTORY,
            &[&new.id, &format!("{:020}", entry.seq)],
        ),
        encode(entry),
    );
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
/// customer). They carry the deal as settlements read it, so they are
/// rewritten with every change of a signed deal.
pub(crate) fn stage_signing_indexes(batch: &mut Batch, old: Option<&Deal>, new: &Deal) {
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
            seq: 1,
            action: HistoryAction::Created,
            at: opened_at,
            recorded_at: now,
            by: caller.user.clone(),
            from: None,
            to: Some(deal.stage.clone()),
            note: None,
            override_reason: None,
            decisions: Vec::new(),
            changes: None,
        };
        let mut batch = Batch::new();
        stage_deal(&mut batch, None, &deal, &entry);
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
                let o = validate::user("owner", o)?;
                if caller.role == Role::Rep && o != caller.user {
                    return Err(Denied("a rep cannot give a deal to someone else".into()).into());
                }
                note("owner", json!(old.value.owner), json!(o));
                d.owner = o;
            }
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
                json!(prepayment),
            );
            d.currency = currency;
            d.needs = needs;
            d.prepayment_ratio = prepayment.map(|p| p.normalize());
            if let Some(lines) = &lines {
                note("lines", json!(d.lines), json!(lines));
                d.lines = lines.clone();
                d.retotal();
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
            let now = now();
            d.version += 1;
            d.updated_at = now;
            let entry = HistoryEntry {
                seq: d.version,
                action: HistoryAction::Updated,
                at: now,
                recorded_at: now,
                by: caller.user.clone(),
                from: None,
                to: None,
                note: None,
                override_reason: None,
                decisions: Vec::new(),
                changes: Some(changes.into()),
            };
            let mut batch = Batch::new();
            stage_deal(&mut batch, Some(&old), &d, &entry);
            // A signed contract's amount or currency counts in its
            // customer's revenue, hence in the branch's tiers.
            let revenue_moved = d.signed_at.is_some()
                && (d.amount_total != old.value.amount_total || d.currency != old.value.currency);
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
        caller.require_manager_of(&deal.value.branch)?;
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
                seq: d.version,
                action: HistoryAction::Cancelled,
                at,
                recorded_at: now,
                by: caller.user.clone(),
                from: None,
                to: None,
                note: Some(reason.clone()),
                override_reason: None,
                decisions: Vec::new(),
                changes: None,
            };
            let mut batch = Batch::new();
            stage_deal(&mut batch, Some(&old), &d, &entry);
            self.stage_first_order_without(&mut batch, &d)?;
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
            self.publish(
                "deal_cancelled",
                Some(&d.branch),
                Some(&d.owner),
                json!({"deal": d.id, "reason": reason, "at": crate::domain::time::format(&at), "by": caller.user}),
            );
            return Ok(d);
        }
        Err(ServiceError::Contended)
    }

    /// A cancelled contract is no order: when `cancelled` was its
    /// customer's first, the first order becomes the earliest signed
    /// contract not cancelled (none: no first order).
    fn stage_first_order_without(
        &self,
        batch: &mut Batch,
        cancelled: &Deal,
    ) -> Result<(), ServiceError> {
        let key = keys::key(keys::CUSTOMER, &[&cancelled.customer_id]);
        let Some(old) = self.repo.read::<Customer>(&key)? else {
            return Ok(());
        };
        if old.value.first_order_at != cancelled.signed_at {
            return Ok(());
        }
        let prefix = keys::prefix(keys::IX_DEAL_CUSTOMER_SIGNED, &[&cancelled.customer_id]);
        let mut first = None;
        for (k, v) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let d = super::repo::decode_deal_record(&k, &v)?;
            if d.id != cancelled.id && d.cancelled_at.is_none() {
                first = d.signed_at;
                break;
            }
        }
        let mut c = old.value.clone();
        c.first_order_at = first;
        c.version += 1;
        c.updated_at = now();
        super::stage_customer(batch, Some(&old), &c);
        Ok(())
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
