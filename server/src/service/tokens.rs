//! Bearer tokens: issuing (admin), authenticating each request, and the
//! admin token's bootstrap at start.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::repo::encode;
use super::{now, ServiceError, Services};
use crate::auth::{hash_token, new_token, Principal};
use crate::domain::token::{Grant, IssuedToken, NewToken, Role};
use crate::domain::{ids, validate};
use crate::store::{keys, Batch};

/// Grants already looked up, by token hash. Tokens are never revoked in this
/// version, so an entry never goes stale.
#[derive(Default)]
pub(crate) struct TokenCache {
    /// Hash → principal.
    by_hash: RwLock<HashMap<String, Principal>>,
}

/// What happened to the admin token at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// `DEALFLOW_ADMIN_TOKEN` was set and is the admin token.
    FromEnv,
    /// No token was configured or stored: this one was generated. Print it
    /// once; only its hash is kept.
    Generated(String),
    /// A generated token from an earlier start is still in force.
    Existing,
}

const ADMIN_KEY: &str = "admin_token";

fn principal_of(grant: &Grant) -> Principal {
    Principal {
        role: grant.role,
        branch: grant.branch.clone(),
        user: grant.user.clone(),
    }
}

impl Services {
    /// Sets up the admin token: from the environment when given, otherwise
    /// generated once at first start.
    pub async fn bootstrap_admin(
        &self,
        from_env: Option<&str>,
    ) -> Result<AdminBootstrap, ServiceError> {
        let meta = keys::key(keys::META, &[ADMIN_KEY]);
        let stored = self.repo.store().get(&meta)?;
        let (token, outcome) = match from_env {
            Some(t) if t.len() < 16 => {
                return Err(ServiceError::invalid(
                    "DEALFLOW_ADMIN_TOKEN",
                    "must be at least 16 characters",
                ))
            }
            Some(t) => (Some(t.to_string()), AdminBootstrap::FromEnv),
            None if stored.is_some() => (None, AdminBootstrap::Existing),
            None => {
                let t = new_token();
                (Some(t.clone()), AdminBootstrap::Generated(t))
            }
        };
        if let Some(token) = token {
            let hash = hash_token(&token);
            let grant = Grant {
                role: Role::Admin,
                branch: None,
                user: "admin".into(),
                created_at: now(),
            };
            let mut batch = Batch::new();
            // Replacing the admin token retires the previous one.
            if let Some(old) = stored.filter(|old| old.as_slice() != hash.as_bytes()) {
                batch.delete(keys::key(keys::TOKEN, &[&String::from_utf8_lossy(&old)]));
            }
            batch.put(meta, hash.as_bytes().to_vec());
            batch.put(keys::key(keys::TOKEN, &[&hash]), encode(&grant));
            self.repo.commit(batch).await?;
            self.tokens.by_hash.write().clear();
        }
        Ok(outcome)
    }

    /// The caller behind a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<Principal, ServiceError> {
        let hash = hash_token(token);
        if let Some(p) = self.tokens.by_hash.read().get(&hash) {
            return Ok(p.clone());
        }
        let grant: Grant = self
            .repo
            .read(&keys::key(keys::TOKEN, &[&hash]))?
            .ok_or_else(|| ServiceError::Unauthenticated("the bearer token is not valid".into()))?
            .value;
        let p = principal_of(&grant);
        self.tokens.by_hash.write().insert(hash, p.clone());
        Ok(p)
    }

    /// Issues a token (admin only); the secret is returned once.
    pub async fn issue_token(
        &self,
        caller: &Principal,
        req: NewToken,
    ) -> Result<IssuedToken, ServiceError> {
        caller.require_admin()?;
        let user = validate::user("user", &req.user)?;
        match (req.role, &req.branch) {
            (Role::Admin, Some(_)) => {
                return Err(ServiceError::invalid(
                    "branch",
                    "an admin token has no branch",
                ))
            }
            (Role::Manager | Role::Rep, None) => {
                return Err(ServiceError::invalid(
                    "branch",
                    "a manager or rep token needs a branch",
                ))
            }
            (_, Some(b)) if !ids::is_slug(b) || !self.repo.exists(keys::BRANCH, b)? => {
                return Err(ServiceError::UnknownReference {
                    field: "branch".into(),
                    kind: "branch",
                    id: b.clone(),
                })
            }
            _ => {}
        }
        let token = new_token();
        let grant = Grant {
            role: req.role,
            branch: req.branch.clone(),
            user: user.clone(),
            created_at: now(),
        };
        let mut batch = Batch::new();
        batch.put(
            keys::key(keys::TOKEN, &[&hash_token(&token)]),
            encode(&grant),
        );
        self.repo.commit(batch).await?;
        Ok(IssuedToken {
            token,
            role: req.role,
            branch: req.branch,
            user,
        })
    }
}
