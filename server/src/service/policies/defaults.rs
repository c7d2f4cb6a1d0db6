//! The default policies a fresh server installs, once: a store that already
//! has a policy of the same name keeps what it has (its versions are never
//! replaced, and a newer default is not activated behind an admin's back).

use base64::Engine as _;

use super::records::{ActivateRequest, NewPolicy, Policy};
use crate::auth::Principal;
use crate::policy::defaults::{NEW_BRAND_BONUS_WASM, SCRIPTS};
use crate::policy::live::Runtime;
use crate::service::repo::decode;
use crate::service::{ServiceError, Services};
use crate::store::keys;

impl Services {
    /// Installs the default policies on a fresh server, then loads every
    /// active version into the live set. Call once at start.
    pub async fn init_policies(&self) -> Result<(), ServiceError> {
        let system = Principal {
            role: crate::domain::token::Role::Admin,
            branch: None,
            user: "system".into(),
        };
        for (name, source) in SCRIPTS {
            if self.repo.exists(keys::POLICY, name)? {
                continue;
            }
            let req = NewPolicy {
                name: name.into(),
                scope: "global".into(),
                runtime: Runtime::Rhai,
                source: Some(source.into()),
                module: None,
                config: None,
                dry_run: false,
            };
            let up = self.upload_policy(&system, req).await?;
            self.activate_policy(&system, name, up.version, ActivateRequest::default())
                .await?;
            if name == "new-brand-bonus" {
                let alternative = NewPolicy {
                    name: name.into(),
                    scope: "global".into(),
                    runtime: Runtime::Wasm,
                    source: None,
                    module: Some(
                        base64::engine::general_purpose::STANDARD.encode(NEW_BRAND_BONUS_WASM),
                    ),
                    config: None,
                    dry_run: false,
                };
                self.upload_policy(&system, alternative).await?;
            }
        }
        for (key, raw) in
            self.repo
                .store()
                .scan(&keys::prefix(keys::POLICY, &[]), None, usize::MAX)?
        {
            let p: Policy = decode(&key, &raw)?;
            if let Some(v) = p.active_version {
                let overrides = super::activation_config(&p, v);
                match self.live_policy(&p, v, &overrides) {
                    Ok(live) => self.policies.live.set(&p.name, Some(live)),
                    // A version that compiled at upload but not now (e.g. an
                    // engine upgrade) must not keep the server from starting.
                    Err(e) => {
                        tracing::error!(policy = %p.name, version = v, error = %e, "active policy failed to load")
                    }
                }
            }
        }
        Ok(())
    }
}
