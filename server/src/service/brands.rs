//! The brand catalog (admin-managed, readable by everyone).

use serde_json::json;

use super::repo::{encode, Source};
use super::{events, Page, PageRequest, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::brand::{Brand, NewBrand};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::{ids, validate};
use crate::store::{keys, Batch, StoreError};

impl Services {
    /// Adds a brand (admin). A brand starts out new (never sold).
    pub async fn create_brand(
        &self,
        caller: &Principal,
        req: NewBrand,
    ) -> Result<Brand, ServiceError> {
        caller.require_admin()?;
        if !ids::is_slug(&req.id) {
            return Err(ServiceError::invalid("id", "must match [a-z0-9-]{1,40}"));
        }
        let brand = Brand {
            name: validate::name("name", &req.name)?,
            id: req.id,
            introduced_at: req.introduced_at,
            new: true,
            first_signed_at: None,
            first_signed_deal: None,
            version: 1,
        };
        let key = keys::key(keys::BRAND, &[&brand.id]);
        let mut batch = Batch::new();
        batch.expect(key.clone(), None).put(key, encode(&brand));
        events::add(
            &mut batch,
            EventKind::BrandCreated,
            ResourceRef::brand(&brand.id),
            &caller.user,
            json!({"name": brand.name, "introduced_at": brand.introduced_at}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => Err(ServiceError::Duplicate {
                kind: "brand",
                id: brand.id,
            }),
            other => other.map(|_| brand).map_err(Into::into),
        }
    }

    /// Lists the catalog.
    pub fn list_brands(&self, page: &PageRequest) -> Result<Page<Brand>, ServiceError> {
        self.repo.list(
            Source::Primary(keys::prefix(keys::BRAND, &[])),
            page,
            |_: &Brand| true,
        )
    }

    /// One brand.
    pub fn brand(&self, id: &str) -> Result<Brand, ServiceError> {
        Ok(self.repo.fetch(keys::BRAND, "brand", id)?.value)
    }
}
