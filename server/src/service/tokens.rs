//! Bearer tokens: issuing, listing and revoking them, authenticating each
//! request through a cache that a revocation or an expiry never outlives,
//! when each token was last used, and the admin token's bootstrap at start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use parking_lot::{Mutex, RwLock};
use serde_json::json;

use super::page::{Page, PageRequest};
use super::repo::{encode, Source, Stored};
use super::{events, now, ServiceError, Services, MAX_RETRIES};
use crate::auth::{hash_token, new_token, Denied, Principal};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::token::{
    Grant, IssuedToken, NewToken, Revocation, Role, TokenFilter, TokenInfo, TokenStatus,
};
use crate::domain::{ids, validate};
use crate::store::{keys, Batch, Entry, StoreError};

/// Shortest time between two writes of one token's last use: the time is
/// kept in memory on every request and stored at most this often, off the
/// request path, so authenticating never waits for a durable write.
pub const USAGE_WRITE_INTERVAL_MS: i64 = 60_000;

/// Who is recorded as revoking the previous admin token when a new
/// `DEALFLOW_ADMIN_TOKEN` replaces it at start.
const BOOTSTRAP: &str = "DEALFLOW_ADMIN_TOKEN";

/// Grants already looked up, by token hash, and when each token was last
/// used. A revocation drops its grant from here once it is durable; an
/// expiry is checked on every hit.
#[derive(Default)]
pub(crate) struct TokenCache {
    /// Hash → grant, with a count of drops.
    grants: RwLock<Grants>,
    /// Token id → its last use. Kept when grants are dropped, so a
    /// revoked token's last use still shows in lists.
    usage: Mutex<HashMap<String, Arc<Usage>>>,
}

/// The cached grants.
#[derive(Default)]
struct Grants {
    /// Hash → what the token grants.
    by_hash: HashMap<String, Arc<Cached>>,
    /// Bumped with every drop: a lookup that read the store before a drop
    /// does not put back what the drop removed (it may have read the grant
    /// before the revocation was written).
    generation: u64,
}

/// A valid (not revoked) token, as a request needs it.
struct Cached {
    /// The caller it authenticates.
    principal: Principal,
    /// When it stops working.
    expires_at: Option<DateTime<Utc>>,
    /// Its last use (`None` only for a grant without an id, which the store
    /// upgrade gives one before any request is served).
    usage: Option<Arc<Usage>>,
}

/// When a token was last used, in milliseconds since the epoch (0: never).
struct Usage {
    /// The token's id.
    id: String,
    /// The last use seen by this process.
    last_ms: AtomicI64,
    /// The last use written to the store (or read from it).
    stored_ms: AtomicI64,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Arc<Cached>> {
        self.grants.read().by_hash.get(hash).cloned()
    }

    fn generation(&self) -> u64 {
        self.grants.read().generation
    }

    /// Caches `cached` unless grants were dropped since `generation`.
    fn insert(&self, hash: String, cached: Arc<Cached>, generation: u64) {
        let mut grants = self.grants.write();
        if grants.generation == generation {
            grants.by_hash.insert(hash, cached);
        }
    }

    /// Drops the grant of `hash` (every grant when `None`).
    fn drop_grants(&self, hash: Option<&str>) {
        let mut grants = self.grants.write();
        grants.generation += 1;
        match hash {
            Some(h) => {
                grants.by_hash.remove(h);
            }
            None => grants.by_hash.clear(),
        }
    }

    /// The usage of token `id`, created with the stored last use.
    fn usage_of(&self, id: &str, stored: Option<DateTime<Utc>>) -> Arc<Usage> {
        let ms = stored.map_or(0, |t| t.timestamp_millis());
        Arc::clone(self.usage.lock().entry(id.to_string()).or_insert_with(|| {
            Arc::new(Usage {
                id: id.to_string(),
                last_ms: AtomicI64::new(ms),
                stored_ms: AtomicI64::new(ms),
            })
        }))
    }

    /// The last use of token `id` this process saw.
    fn last_used(&self, id: &str) -> Option<DateTime<Utc>> {
        let ms = self.usage.lock().get(id)?.last_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| DateTime::from_timestamp_millis(ms))?
    }
}

/// What happened to the admin token at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// `DEALFLOW_ADMIN_TOKEN` was set and is an admin token.
    FromEnv,
    /// No token was configured or stored: this one was generated. Print it
    /// once; only its hash is kept.
    Generated(String),
    /// A generated token from an earlier start is still in force.
    Existing,
    /// `DEALFLOW_ADMIN_TOKEN` holds a token that was revoked: it stays
    /// revoked, and the server starts with the admin tokens it has.
    Revoked {
        /// The revoked token's id.
        id: String,
        /// How many admin tokens are active.
        active_admins: usize,
    },
}

const ADMIN_KEY: &str = "admin_token";

fn principal_of(grant: &Grant) -> Principal {
    Principal {
        role: grant.role,
        branch: grant.branch.clone(),
        user: grant.user.clone(),
    }
}

fn token_key(hash: &str) -> Vec<u8> {
    keys::key(keys::TOKEN, &[hash])
}

/// Writes a grant (new or changed) and its indexes.
pub(super) fn put_grant(batch: &mut Batch, hash: &str, grant: &Grant) {
    batch.put(token_key(hash), encode(grant));
    batch.put(keys::key(keys::IX_TOKEN_ID, &[&grant.id]), hash.as_bytes());
    if let Some(b) = &grant.branch {
        batch.put(
            keys::key(keys::IX_TOKEN_BRANCH, &[b, &grant.id]),
            hash.as_bytes(),
        );
    }
}

fn unauthenticated(message: String) -> ServiceError {
    ServiceError::Unauthenticated(message)
}

/// Who may revoke `grant`: admins any token, a manager their branch's reps'.
fn may_revoke(caller: &Principal, grant: &Grant) -> Result<(), Denied> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::Manager if grant.role == Role::Rep && grant.branch == caller.branch => Ok(()),
        Role::Manager => Err(Denied(
            "a manager revokes only the rep tokens of their own branch".into(),
        )),
        Role::Rep => Err(Denied(
            "only an admin or the branch's manager may revoke tokens".into(),
        )),
    }
}

impl Services {
    /// Sets up the admin token at start: the one in `DEALFLOW_ADMIN_TOKEN`
    /// when given (a new one there replaces and revokes the previous
    /// bootstrap token; a revoked one is never reinstated), otherwise one
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
                    BOOTSTRAP,
                    "must be at least 16 characters",
                ))
            }
            Some(t) => match self.repo.read::<Grant>(&token_key(&hash_token(t)))? {
                Some(g) if g.value.role != Role::Admin => {
                    return Err(ServiceError::invalid(
                        BOOTSTRAP,
                        "is the token of a manager or rep, not an admin token",
                    ))
                }
                Some(g) if g.value.revoked.is_some() => {
                    let active_admins = self.active_admins(None)?.len();
                    return Ok(AdminBootstrap::Revoked {
                        id: g.value.id,
                        active_admins,
                    });
                }
                // Already an admin token (this one, or one issued through
                // the API): nothing to write.
                Some(_) => return Ok(AdminBootstrap::FromEnv),
                None => (t.to_string(), AdminBootstrap::FromEnv),
            },
            None if stored.is_some() => return Ok(AdminBootstrap::Existing),
            None => {
                let t = new_token();
                (t.clone(), AdminBootstrap::Generated(t))
            }
        };
        let hash = hash_token(&token);
        let at = now();
        let grant = Grant {
            id: self.repo.new_id("tok")?,
            role: Role::Admin,
            branch: None,
            user: "admin".into(),
            created_at: at,
            expires_at: None,
            revoked: None,
        };
        let mut batch = Batch::new();
        // A new admin token given at start retires the previous one: it is
        // revoked (and so never reinstated), not forgotten.
        if let Some(old_hash) = stored.filter(|old| old.as_slice() != hash.as_bytes()) {
            let old_hash = String::from_utf8_lossy(&old_hash).into_owned();
            if let Some(old) = self.repo.read::<Grant>(&token_key(&old_hash))? {
                if old.value.revoked.is_none() {
                    let mut retired = old.value.clone();
                    retired.revoked = Some(Revocation {
                        at,
                        by: BOOTSTRAP.into(),
                    });
                    batch.expect(token_key(&old_hash), Some(&old.raw));
                    batch.put(token_key(&old_hash), encode(&retired));
                }
            }
        }
        batch.put(meta, hash.as_bytes().to_vec());
        put_grant(&mut batch, &hash, &grant);
        self.repo.commit(batch).await?;
        self.tokens.drop_grants(None);
        Ok(outcome)
    }

    /// The caller behind a bearer token: 401 when it is unknown, revoked
    /// or expired. Notes the token's use (stored at most once a minute).
    pub fn authenticate(&self, token: &str) -> Result<Principal, ServiceError> {
        Ok(self
            .authenticate_hash(&hash_token(token), "the bearer token")?
            .0)
    }

    /// The caller behind the token whose hash is `hash`, and when that
    /// token expires: 401 when it is unknown, revoked or expired, saying so
    /// of `what` ("the bearer token", or the token a session was opened
    /// with). Notes the token's use.
    pub(super) fn authenticate_hash(
        &self,
        hash: &str,
        what: &str,
    ) -> Result<(Principal, Option<DateTime<Utc>>), ServiceError> {
        let now = now();
        let cached = match self.tokens.get(hash) {
            Some(c) => c,
            None => self.load_grant(hash.to_string(), what)?,
        };
        if let Some(exp) = cached.expires_at.filter(|exp| *exp <= now) {
            return Err(unauthenticated(format!(
                "{what} expired at {}; ask for a new one",
                keys::time(&exp)
            )));
        }
        if let Some(usage) = &cached.usage {
            self.note_use(usage, now);
        }
        Ok((cached.principal.clone(), cached.expires_at))
    }

    /// Reads a grant that is not cached, and caches it unless it was
    /// dropped meanwhile.
    fn load_grant(&self, hash: String, what: &str) -> Result<Arc<Cached>, ServiceError> {
        let generation = self.tokens.generation();
        let grant: Grant = self
            .repo
            .read(&token_key(&hash))?
            .ok_or_else(|| unauthenticated(format!("{what} is not valid")))?
            .value;
        if let Some(r) = &grant.revoked {
            return Err(unauthenticated(format!(
                "{what} was revoked at {}",
                keys::time(&r.at)
            )));
        }
        let usage = match grant.id.as_str() {
            "" => None,
            id => Some(self.tokens.usage_of(id, self.stored_last_use(id)?)),
        };
        let cached = Arc::new(Cached {
            principal: principal_of(&grant),
            expires_at: grant.expires_at,
            usage,
        });
        self.tokens.insert(hash, Arc::clone(&cached), generation);
        Ok(cached)
    }

    /// The last use of token `id` as stored.
    fn stored_last_use(&self, id: &str) -> Result<Option<DateTime<Utc>>, ServiceError> {
        Ok(self
            .repo
            .store()
            .get(&keys::key(keys::TOKEN_USED, &[id]))?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<DateTime<Utc>>().ok()))
    }

    /// Notes a use at `now`; once a minute per token, writes it in the
    /// background (the request does not wait for it).
    fn note_use(&self, usage: &Arc<Usage>, now: DateTime<Utc>) {
        let ms = now.timestamp_millis();
        usage.last_ms.fetch_max(ms, Ordering::Relaxed);
        let stored = usage.stored_ms.load(Ordering::Relaxed);
        if ms - stored < USAGE_WRITE_INTERVAL_MS
            || usage
                .stored_ms
                .compare_exchange(stored, ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut batch = Batch::new();
        batch.put(
            keys::key(keys::TOKEN_USED, &[&usage.id]),
            keys::time(&now).into_bytes(),
        );
        let repo = self.repo.clone();
        runtime.spawn(async move {
            if let Err(e) = repo.commit(batch).await {
                tracing::warn!(error = %e, "could not store a token's last use");
            }
        });
    }

    /// Stores every last use not stored yet (at shutdown).
    pub async fn store_token_usage(&self) -> Result<(), ServiceError> {
        let mut batch = Batch::new();
        let usage: Vec<Arc<Usage>> = self.tokens.usage.lock().values().cloned().collect();
        for u in usage {
            let last = u.last_ms.load(Ordering::Relaxed);
            if last > u.stored_ms.swap(last, Ordering::Relaxed) {
                if let Some(t) = DateTime::from_timestamp_millis(last) {
                    batch.put(
                        keys::key(keys::TOKEN_USED, &[&u.id]),
                        keys::time(&t).into_bytes(),
                    );
                }
            }
        }
        Ok(self.repo.commit(batch).await?)
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
        let created_at = now();
        let expires_at = match req.expires_at {
            Some(t) if t <= created_at => {
                return Err(ServiceError::invalid(
                    "expires_at",
                    format!(
                        "must be in the future (it is {} now)",
                        keys::time(&created_at)
                    ),
                ))
            }
            t => t.map(|t| t.trunc_subsecs(3)),
        };
        let token = new_token();
        let hash = hash_token(&token);
        let grant = Grant {
            id: self.repo.new_id("tok")?,
            role: req.role,
            branch: req.branch,
            user,
            created_at,
            expires_at,
            revoked: None,
        };
        let mut batch = Batch::new();
        batch.expect(token_key(&hash), None);
        put_grant(&mut batch, &hash, &grant);
        self.repo.commit(batch).await?;
        Ok(IssuedToken {
            id: grant.id,
            token,
            role: grant.role,
            branch: grant.branch,
            user: grant.user,
            created_at,
            expires_at,
        })
    }

    /// Lists tokens without their secrets: an admin every token, a manager
    /// their branch's reps' tokens; reps may not.
    pub fn list_tokens(
        &self,
        caller: &Principal,
        f: &TokenFilter,
    ) -> Result<Page<TokenInfo>, ServiceError> {
        let reps_only = match caller.role {
            Role::Admin => false,
            Role::Manager => true,
            Role::Rep => {
                return Err(
                    Denied("only an admin or a branch's manager may list tokens".into()).into(),
                )
            }
        };
        let prefix = match caller.list_scope(f.branch.as_deref())? {
            Some(b) => keys::prefix(keys::IX_TOKEN_BRANCH, &[&b]),
            None => keys::prefix(keys::IX_TOKEN_ID, &[]),
        };
        let page = PageRequest {
            limit: f.limit,
            cursor: f.cursor.clone(),
        };
        let now = now();
        let grants = self.repo.list(
            Source::Index {
                prefix,
                tag: keys::TOKEN,
            },
            &page,
            |g: &Grant| {
                (!reps_only || g.role == Role::Rep)
                    && f.user.as_ref().is_none_or(|u| *u == g.user)
                    && f.status.is_none_or(|s| g.status(now) == s)
            },
        )?;
        let items = grants
            .items
            .iter()
            .map(|g| Ok(TokenInfo::of(g, self.last_used(&g.id)?, now)))
            .collect::<Result<_, ServiceError>>()?;
        Ok(Page {
            items,
            next_cursor: grants.next_cursor,
        })
    }

    /// When token `id` was last used: what this process saw, else what
    /// was stored.
    fn last_used(&self, id: &str) -> Result<Option<DateTime<Utc>>, ServiceError> {
        let seen = self.tokens.last_used(id);
        let stored = self.stored_last_use(id)?;
        Ok(seen.max(stored))
    }

    /// One token holder, as the event rule reads tokens (an admin any, a
    /// branch's manager its branch's).
    pub fn token_info(&self, caller: &Principal, id: &str) -> Result<TokenInfo, ServiceError> {
        let (_, stored) = self.grant_by_id(id)?;
        let g = &stored.value;
        caller.may_read(&ResourceRef::token(&g.id, g.branch.as_deref(), &g.user))?;
        Ok(TokenInfo::of(g, self.last_used(id)?, now()))
    }

    /// Revokes token `id` at once (an admin any token, a manager their
    /// branch's reps'): it never authenticates again. Revoking a revoked
    /// token changes nothing. The last active admin token cannot be revoked.
    pub async fn revoke_token(
        &self,
        caller: &Principal,
        id: &str,
    ) -> Result<TokenInfo, ServiceError> {
        for _ in 0..MAX_RETRIES {
            let (hash, old) = self.grant_by_id(id)?;
            may_revoke(caller, &old.value)?;
            let at = now();
            if old.value.revoked.is_some() {
                return Ok(TokenInfo::of(&old.value, self.last_used(id)?, at));
            }
            let mut batch = Batch::new();
            batch.expect(token_key(&hash), Some(&old.raw));
            if old.value.role == Role::Admin && old.value.status(at) == TokenStatus::Active {
                let others = self.active_admins(Some(&hash))?;
                if others.is_empty() {
                    return Err(ServiceError::WrongState {
                        code: "last_admin_token",
                        message: "this is the last active admin token: issue another admin \
                                  token first, so the server keeps an administrator"
                            .into(),
                    });
                }
                // Two admins revoking the last two admin tokens at once:
                // the second commit finds the first one's change and retries.
                for (key, raw) in others {
                    batch.expect(key, Some(&raw));
                }
            }
            let mut grant = old.value.clone();
            grant.revoked = Some(Revocation {
                at,
                by: caller.user.clone(),
            });
            batch.put(token_key(&hash), encode(&grant));
            self.end_sessions_of(&mut batch, &grant.id)?;
            events::add(
                &mut batch,
                EventKind::TokenRevoked,
                ResourceRef::token(&grant.id, grant.branch.as_deref(), &grant.user),
                &caller.user,
                json!({"id": grant.id, "role": grant.role, "branch": grant.branch,
                       "user": grant.user, "by": caller.user, "at": crate::domain::time::format(&at)}),
            );
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => other?,
            }
            self.tokens.drop_grants(Some(&hash));
            self.sessions.something_ended();
            return Ok(TokenInfo::of(&grant, self.last_used(id)?, at));
        }
        Err(ServiceError::Contended)
    }

    /// The id of the token whose hash is `hash` (known to exist).
    pub(super) fn token_id_of(&self, hash: &str) -> Result<String, ServiceError> {
        let grant: Grant = self
            .repo
            .read(&token_key(hash))?
            .ok_or_else(|| unauthenticated("the token is not valid".into()))?
            .value;
        Ok(grant.id)
    }

    /// The hash and grant of token `id`, or 404.
    fn grant_by_id(&self, id: &str) -> Result<(String, Stored<Grant>), ServiceError> {
        let not_found = || ServiceError::not_found("token", id);
        let hash = self
            .repo
            .store()
            .get(&keys::key(keys::IX_TOKEN_ID, &[id]))?
            .ok_or_else(not_found)?;
        let hash = String::from_utf8_lossy(&hash).into_owned();
        let grant = self.repo.read(&token_key(&hash))?.ok_or_else(not_found)?;
        Ok((hash, grant))
    }

    /// The active admin tokens (key and stored bytes), but the one of
    /// `except`.
    fn active_admins(&self, except: Option<&str>) -> Result<Vec<Entry>, ServiceError> {
        let now = now();
        let except = except.map(token_key);
        let mut out = Vec::new();
        let all = self
            .repo
            .store()
            .scan(&keys::prefix(keys::TOKEN, &[]), None, usize::MAX)?;
        for (key, raw) in all {
            let g: Grant = super::repo::decode(&key, &raw)?;
            if g.role == Role::Admin
                && g.status(now) == TokenStatus::Active
                && except.as_deref() != Some(key.as_slice())
            {
                out.push((key, raw));
            }
        }
        Ok(out)
    }

    /// The users holding an active (neither revoked nor expired) rep token
    /// for `branch`: the reps assignment may pick.
    pub(crate) fn active_reps(
        &self,
        branch: &str,
    ) -> Result<std::collections::BTreeSet<String>, ServiceError> {
        let now = now();
        let mut reps = std::collections::BTreeSet::new();
        let store = self.repo.store();
        for (_, hash) in store.scan(
            &keys::prefix(keys::IX_TOKEN_BRANCH, &[branch]),
            None,
            usize::MAX,
        )? {
            let key = token_key(&String::from_utf8_lossy(&hash));
            if let Some(g) = self.repo.read::<Grant>(&key)? {
                if g.value.role == Role::Rep && g.value.status(now) == TokenStatus::Active {
                    reps.insert(g.value.user);
                }
            }
        }
        Ok(reps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached() -> Arc<Cached> {
        Arc::new(Cached {
            principal: Principal {
                role: Role::Rep,
                branch: Some("sh".into()),
                user: "li".into(),
            },
            expires_at: None,
            usage: None,
        })
    }

    #[test]
    fn a_lookup_that_read_the_store_before_a_revocation_does_not_cache_its_grant() {
        let cache = TokenCache::default();
        // A lookup reads the grant (still valid) ...
        let before = cache.generation();
        // ... the revocation is written and drops the grant ...
        cache.drop_grants(Some("hash"));
        // ... and the lookup's insert comes last: it must not stick.
        cache.insert("hash".into(), cached(), before);
        assert!(cache.get("hash").is_none());
        // A lookup after the drop caches as usual.
        cache.insert("hash".into(), cached(), cache.generation());
        assert!(cache.get("hash").is_some());
    }
}
