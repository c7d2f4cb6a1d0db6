//! Communication records: written by the branch, indexed by customer (in
//! time order) and by author; a record moves its customer's last contact.

use serde_json::json;

use super::repo::{encode, Source, Stored};
use super::{
    check_business_time, check_version, events, now, stage_customer, Page, PageRequest,
    ServiceError, Services, MAX_RETRIES,
};
use crate::auth::{Denied, Principal};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::record::{NewRecord, Record, RecordPatch};
use crate::domain::token::Role;
use crate::domain::validate;
use crate::store::{keys, Batch, StoreError};

/// Filters of `GET /v1/records`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordFilter {
    /// The branch (non-admins: their own).
    pub branch: String,
    /// Only this author's records (reps: always themselves).
    pub by: Option<String>,
    /// Page size.
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}

/// Sortable text of a time for index keys (fixed width, UTC).
pub(crate) fn time_key(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%dT%H%M%S%.3f").to_string()
}

impl Services {
    /// Adds a communication record for a customer.
    pub async fn create_record(
        &self,
        caller: &Principal,
        customer_id: &str,
        req: NewRecord,
    ) -> Result<Record, ServiceError> {
        let by = match req.by {
            Some(b) => validate::user("by", &b)?,
            None => caller.user.clone(),
        };
        if caller.role == Role::Rep && by != caller.user {
            return Err(Denied("a rep records only their own contacts".into()).into());
        }
        let at = check_business_time("at", req.at)?;
        let id = self.repo.new_id("rec")?;
        for _ in 0..MAX_RETRIES {
            let customer: super::repo::Stored<crate::domain::customer::Customer> =
                self.repo.fetch(keys::CUSTOMER, "customer", customer_id)?;
            caller.require_branch(&customer.value.branch)?;
            let record = Record {
                id: id.clone(),
                customer_id: customer_id.into(),
                branch: customer.value.branch.clone(),
                at,
                by: by.clone(),
                contact: validate::opt_text("contact", req.contact.as_deref())?,
                kind: req.kind,
                summary: validate::text("summary", &req.summary, validate::MAX_TEXT)?,
                feedback: validate::opt_text("feedback", req.feedback.as_deref())?,
                problems: validate::opt_text("problems", req.problems.as_deref())?,
                next_steps: validate::opt_text("next_steps", req.next_steps.as_deref())?,
                created_by: caller.user.clone(),
                created_at: now(),
                edited_by: None,
                edited_at: None,
                version: 1,
            };
            let mut batch = Batch::new();
            let key = keys::key(keys::RECORD, &[&record.id]);
            batch.expect(key.clone(), None).put(key, encode(&record));
            batch.put(
                keys::key(
                    keys::IX_RECORD_CUSTOMER,
                    &[customer_id, &time_key(&at), &record.id],
                ),
                record.id.as_bytes(),
            );
            batch.put(
                keys::key(keys::IX_RECORD_AUTHOR, &[&record.branch, &by, &record.id]),
                record.id.as_bytes(),
            );
            let mut c = customer.value.clone();
            if c.last_contact_at.is_none_or(|last| last < at) {
                c.last_contact_at = Some(at);
                // The customer's representation changed: clients holding its
                // ETag must see a new version.
                c.version += 1;
                c.updated_at = now();
                // Its due dates move with its last contact.
                let due = self.due_update(&c).await?;
                stage_customer(&mut batch, Some(&customer), &c, Some(&due));
            }
            events::add(
                &mut batch,
                EventKind::RecordAdded,
                ResourceRef::record(&record),
                &caller.user,
                json!({"customer": record.customer_id, "kind": record.kind, "at": crate::domain::time::format(&record.at),
                       "by": record.by, "version": record.version}),
            );
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map(|_| record).map_err(Into::into),
            }
        }
        Err(ServiceError::Contended)
    }

    /// A customer's records in time order; reps see only their own.
    pub fn list_records(
        &self,
        caller: &Principal,
        customer_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Record>, ServiceError> {
        let customer = self.customer(caller, customer_id)?;
        let author = caller.owner_scope(None)?;
        let prefix = keys::prefix(keys::IX_RECORD_CUSTOMER, &[&customer.id]);
        self.repo.list(
            Source::Index {
                prefix,
                tag: keys::RECORD,
            },
            page,
            move |r: &Record| author.as_ref().is_none_or(|a| &r.by == a),
        )
    }
}

impl Services {
    /// The branch's records by author (a rep: their own), newest id last.
    pub fn records_by_author(
        &self,
        caller: &Principal,
        f: &RecordFilter,
    ) -> Result<Page<Record>, ServiceError> {
        caller.require_branch(&f.branch)?;
        self.repo
            .fetch::<crate::domain::branch::Branch>(keys::BRANCH, "branch", &f.branch)?;
        let by = caller.owner_scope(f.by.as_deref())?;
        let prefix = match &by {
            Some(b) => keys::prefix(keys::IX_RECORD_AUTHOR, &[&f.branch, b]),
            None => keys::prefix(keys::IX_RECORD_AUTHOR, &[&f.branch]),
        };
        let page = PageRequest {
            limit: f.limit,
            cursor: f.cursor.clone(),
        };
        self.repo.list(
            Source::Index {
                prefix,
                tag: keys::RECORD,
            },
            &page,
            |_: &Record| true,
        )
    }

    /// Corrects a record: its author or a manager of its branch. The
    /// version replaced is kept as a revision (records are never erased).
    pub async fn patch_record(
        &self,
        caller: &Principal,
        customer_id: &str,
        record_id: &str,
        patch: RecordPatch,
        if_match: Option<u64>,
    ) -> Result<Record, ServiceError> {
        for _ in 0..MAX_RETRIES {
            let old = self.visible_record(caller, customer_id, record_id)?;
            check_version(if_match, old.value.version)?;
            let mut r = old.value.clone();
            let set = |field: &str, v: &Option<Option<String>>, into: &mut Option<String>| {
                if let Some(v) = v {
                    *into = validate::opt_text(field, v.as_deref())?;
                }
                Ok::<_, ServiceError>(())
            };
            set("contact", &patch.contact, &mut r.contact)?;
            set("feedback", &patch.feedback, &mut r.feedback)?;
            set("problems", &patch.problems, &mut r.problems)?;
            set("next_steps", &patch.next_steps, &mut r.next_steps)?;
            if let Some(k) = patch.kind {
                r.kind = k;
            }
            if let Some(summary) = &patch.summary {
                r.summary = validate::text("summary", summary, validate::MAX_TEXT)?;
            }
            r.version += 1;
            r.edited_by = Some(caller.user.clone());
            r.edited_at = Some(now());
            let key = keys::key(keys::RECORD, &[record_id]);
            let mut batch = Batch::new();
            batch
                .expect(key.clone(), Some(&old.raw))
                .put(key, encode(&r));
            batch.put(
                keys::key(
                    keys::RECORD_REVISION,
                    &[record_id, &format!("{:020}", old.value.version)],
                ),
                old.raw.clone(),
            );
            events::add(
                &mut batch,
                EventKind::RecordCorrected,
                ResourceRef::record(&r),
                &caller.user,
                json!({"customer": r.customer_id, "version": r.version}),
            );
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map(|_| r).map_err(Into::into),
            }
        }
        Err(ServiceError::Contended)
    }

    /// One record, if the caller may read it.
    pub fn record(
        &self,
        caller: &Principal,
        customer_id: &str,
        record_id: &str,
    ) -> Result<Record, ServiceError> {
        Ok(self.visible_record(caller, customer_id, record_id)?.value)
    }

    /// The versions a record had before its corrections, oldest first.
    pub fn record_revisions(
        &self,
        caller: &Principal,
        customer_id: &str,
        record_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Record>, ServiceError> {
        self.visible_record(caller, customer_id, record_id)?;
        self.repo.list(
            Source::Primary(keys::prefix(keys::RECORD_REVISION, &[record_id])),
            page,
            |_: &Record| true,
        )
    }

    /// A record of `customer_id` the caller may read and correct: anyone of
    /// its branch but a rep who did not write it.
    fn visible_record(
        &self,
        caller: &Principal,
        customer_id: &str,
        record_id: &str,
    ) -> Result<Stored<Record>, ServiceError> {
        let r: Stored<Record> = self.repo.fetch(keys::RECORD, "record", record_id)?;
        if r.value.customer_id != customer_id {
            return Err(ServiceError::not_found("record", record_id));
        }
        // A rep's own records: those they wrote (what a manager enters for
        // them is the manager's to correct).
        caller.may_read(&ResourceRef::record(&r.value))?;
        Ok(r)
    }
}
