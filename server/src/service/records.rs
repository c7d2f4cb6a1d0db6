//! Communication records: written by the branch, indexed by customer (in
//! time order) and by author; a record moves its customer's last contact.

use super::repo::{encode, Source};
use super::{check_business_time, now, Page, PageRequest, ServiceError, Services, MAX_RETRIES};
use crate::auth::{Denied, Principal};
use crate::domain::record::{NewRecord, Record};
use crate::domain::token::Role;
use crate::domain::validate;
use crate::store::{keys, Batch, StoreError};

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

                let ckey = keys::key(keys::CUSTOMER, &[customer_id]);
                batch
                    .expect(ckey.clone(), Some(&customer.raw))
                    .put(ckey, encode(&c));
            }
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
