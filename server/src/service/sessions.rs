//! Browser sessions: a bearer token is exchanged once for a session whose
//! id travels only in an `HttpOnly` cookie, so the console never holds a
//! token where scripts could read it.
//!
//! A session is stored durably (a restart keeps people signed in) under the
//! hash of its id, with the hash of the token it was opened with. Every
//! request re-checks that token through the token cache, so revoking or
//! expiring the token ends its sessions at once; revoking also deletes
//! them in the revocation's batch. A session ends at the latest
//! [`SessionConfig::max_age`] after it was opened, and after
//! [`SessionConfig::idle`] without a request. Like a token's last use, a
//! session's last use is kept in memory and written at most once a minute
//! (off the request path), so after a crash its idle clock may be up to a
//! minute behind.
//!
//! Whatever ends a session or a token (sign-out, revocation) bumps a
//! counter that open event streams watch: they re-check their credential
//! and end when it no longer holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::repo::encode;
use super::{now, ServiceError, Services};
use crate::auth::{hash_token, new_secret, Principal};
use crate::domain::session::{SessionInfo, StoredSession};
use crate::store::{keys, Batch};

/// Shortest time between two writes of one session's last use.
const SEEN_WRITE_INTERVAL_MS: i64 = 60_000;

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after it was opened, used or not.
    pub max_age: Duration,
    /// Whether the session cookie is always marked `Secure` (behind a
    /// TLS-terminating proxy; it is also marked when the request says it
    /// came over https).
    pub secure_cookies: bool,
}

/// 12 hours idle, 7 days at most.
pub const DEFAULT_SESSIONS: SessionConfig = SessionConfig {
    idle: Duration::from_secs(12 * 3600),
    max_age: Duration::from_secs(7 * 24 * 3600),
    secure_cookies: false,
};

impl Default for SessionConfig {
    fn default() -> Self {
        DEFAULT_SESSIONS
    }
}

/// How a request authenticated: what an event stream re-checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token, by hash.
    Token(String),
    /// A session, by the hash of its id.
    Session(String),
}

/// An authenticated session: who, and what its writes must send back.
#[derive(Debug, Clone)]
pub struct SessionCaller {
    /// The caller.
    pub principal: Principal,
    /// The session's CSRF token.
    pub csrf: String,
    /// The hash of its id.
    pub hash: String,
}

/// Sessions' configuration, last uses and the "something ended" signal.
pub struct SessionHub {
    /// Lifetimes and cookie flags.
    pub(crate) config: SessionConfig,
    /// Session hash → last use (ms since the epoch) seen and stored.
    seen: Mutex<HashMap<String, Arc<Seen>>>,
    /// Bumped whenever a session or token ends.
    ended: watch::Sender<u64>,
}

/// A session's last use.
struct Seen {
    last_ms: AtomicI64,
    stored_ms: AtomicI64,
}

impl SessionHub {
    /// A hub with `config`.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            seen: Mutex::default(),
            ended: watch::channel(0).0,
        }
    }

    /// Tells open streams that a session or token ended.
    pub(crate) fn something_ended(&self) {
        self.ended.send_modify(|n| *n += 1);
    }

    /// A receiver that changes whenever a session or token ends.
    pub(crate) fn watch_ended(&self) -> watch::Receiver<u64> {
        self.ended.subscribe()
    }
}

impl Default for SessionHub {
    fn default() -> Self {
        Self::new(SessionConfig::default())
    }
}

fn session_key(hash: &str) -> Vec<u8> {
    keys::key(keys::SESSION, &[hash])
}

fn seen_key(hash: &str) -> Vec<u8> {
    keys::key(keys::SESSION_SEEN, &[hash])
}

fn by_token_key(token_id: &str, hash: &str) -> Vec<u8> {
    keys::key(keys::IX_SESSION_TOKEN, &[token_id, hash])
}

fn ended(why: &str) -> ServiceError {
    ServiceError::Unauthenticated(format!("the session ended: {why}; sign in again"))
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Services {
    /// The sessions' configuration.
    pub fn session_config(&self) -> SessionConfig {
        self.sessions.config
    }

    /// Opens a session with a bearer token: returns the session id (the
    /// cookie's value, shown once) and what the caller may know of it.
    pub async fn open_session(&self, token: &str) -> Result<(String, SessionInfo), ServiceError> {
        let token_hash = hash_token(token.trim());
        let (principal, token_expires) = self.authenticate_hash(&token_hash, "the token")?;
        let token_id = self.token_id_of(&token_hash)?;
        let at = now();
        let mut expires_at = at + chrono_of(self.sessions.config.max_age);
        if let Some(t) = token_expires {
            expires_at = expires_at.min(t);
        }
        let id = new_secret("dfs_");
        let hash = hash_token(&id);
        let session = StoredSession {
            token_hash,
            token_id: token_id.clone(),
            csrf: new_secret(""),
            created_at: at,
            expires_at,
        };
        let mut batch = Batch::new();
        batch.expect(session_key(&hash), None);
        batch.put(session_key(&hash), encode(&session));
        batch.put(by_token_key(&token_id, &hash), hash.as_bytes());
        self.repo.commit(batch).await?;
        self.seen_of(&hash, at.timestamp_millis());
        let info = self.info(&principal, &session, at);
        Ok((id, info))
    }

    /// The caller behind a session cookie: 401 when the session is
    /// unknown, ended, idle too long or past its lifetime, or when the
    /// token it was opened with no longer works. Notes its use.
    pub fn authenticate_session(&self, id: &str) -> Result<SessionCaller, ServiceError> {
        let hash = hash_token(id);
        let (principal, session, _) = self.check_session(&hash)?;
        self.note_session_use(&hash, now());
        Ok(SessionCaller {
            principal,
            csrf: session.csrf,
            hash,
        })
    }

    /// Who is signed in with session `id`, and the session's bounds.
    pub fn current_session(&self, id: &str) -> Result<SessionInfo, ServiceError> {
        let hash = hash_token(id);
        let (principal, session, _) = self.check_session(&hash)?;
        let at = now();
        self.note_session_use(&hash, at);
        Ok(self.info(&principal, &session, at))
    }

    /// Ends session `id` on the server (signing out): its cookie opens
    /// nothing from now on, and its event streams end.
    pub async fn end_session(&self, id: &str) -> Result<(), ServiceError> {
        let hash = hash_token(id);
        let Some(stored) = self.repo.read::<StoredSession>(&session_key(&hash))? else {
            return Err(ended("it is not open"));
        };
        let mut batch = Batch::new();
        batch.expect(session_key(&hash), Some(&stored.raw));
        batch.delete(session_key(&hash));
        batch.delete(seen_key(&hash));
        batch.delete(by_token_key(&stored.value.token_id, &hash));
        self.repo.commit(batch).await?;
        self.sessions.seen.lock().remove(&hash);
        self.sessions.something_ended();
        Ok(())
    }

    /// Deletes every session opened with token `token_id`, in `batch`
    /// (the token's revocation).
    pub(crate) fn end_sessions_of(
        &self,
        batch: &mut Batch,
        token_id: &str,
    ) -> Result<(), ServiceError> {
        let prefix = keys::prefix(keys::IX_SESSION_TOKEN, &[token_id]);
        for (key, hash) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let hash = String::from_utf8_lossy(&hash).into_owned();
            batch.delete(session_key(&hash));
            batch.delete(seen_key(&hash));
            batch.delete(key);
        }
        Ok(())
    }

    /// Whether `credential` still authenticates, and until when at most
    /// (the next moment it must be checked again): 401 once it does not.
    pub fn credential_deadline(
        &self,
        credential: &Credential,
    ) -> Result<Option<DateTime<Utc>>, ServiceError> {
        match credential {
            Credential::Token(hash) => Ok(self.authenticate_hash(hash, "the bearer token")?.1),
            Credential::Session(hash) => Ok(Some(self.check_session(hash)?.2)),
        }
    }

    /// A session by hash, checked: its caller, its record and when it ends
    /// if unused.
    fn check_session(
        &self,
        hash: &str,
    ) -> Result<(Principal, StoredSession, DateTime<Utc>), ServiceError> {
        let session: StoredSession = self
            .repo
            .read(&session_key(hash))?
            .ok_or_else(|| ended("it was signed out, or never opened"))?
            .value;
        let at = now();
        if session.expires_at <= at {
            return Err(ended("it reached the end of its lifetime"));
        }
        let idle_end = self.idle_end(hash, &session)?;
        if idle_end <= at {
            return Err(ended("it was idle too long"));
        }
        let (principal, _) = self.authenticate_hash(
            &session.token_hash,
            "the token this session was opened with",
        )?;
        Ok((principal, session.clone(), idle_end.min(session.expires_at)))
    }

    /// When the session ends if unused from now on.
    fn idle_end(&self, hash: &str, session: &StoredSession) -> Result<DateTime<Utc>, ServiceError> {
        let known = self
            .sessions
            .seen
            .lock()
            .get(hash)
            .map(|s| s.last_ms.load(Ordering::Relaxed));
        let last_ms = match known {
            Some(ms) => ms,
            None => {
                let stored = self
                    .repo
                    .store()
                    .get(&seen_key(hash))?
                    .and_then(|v| String::from_utf8(v).ok())
                    .and_then(|v| v.parse::<DateTime<Utc>>().ok())
                    .unwrap_or(session.created_at)
                    .timestamp_millis();
                self.seen_of(hash, stored);
                stored
            }
        };
        let last = DateTime::from_timestamp_millis(last_ms).unwrap_or(session.created_at);
        Ok(last + chrono_of(self.sessions.config.idle))
    }

    /// The in-memory last use of session `hash`, created as `stored_ms`.
    fn seen_of(&self, hash: &str, stored_ms: i64) -> Arc<Seen> {
        Arc::clone(
            self.sessions
                .seen
                .lock()
                .entry(hash.to_string())
                .or_insert_with(|| {
                    Arc::new(Seen {
                        last_ms: AtomicI64::new(stored_ms),
                        stored_ms: AtomicI64::new(stored_ms),
                    })
                }),
        )
    }

    /// Notes a use of session `hash` at `at`; at most once a minute, writes
    /// it in the background.
    fn note_session_use(&self, hash: &str, at: DateTime<Utc>) {
        let seen = self.seen_of(hash, at.timestamp_millis());
        let ms = at.timestamp_millis();
        seen.last_ms.fetch_max(ms, Ordering::Relaxed);
        let stored = seen.stored_ms.load(Ordering::Relaxed);
        if ms - stored < SEEN_WRITE_INTERVAL_MS
            || seen
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
        // Only while the session exists: a late write must not outlive a
        // sign-out (the expectation fails and nothing is written).
        if let Ok(Some(raw)) = self.repo.store().get(&session_key(hash)) {
            batch.expect(session_key(hash), Some(&raw));
        } else {
            return;
        }
        batch.put(seen_key(hash), keys::time(&at).into_bytes());
        let repo = self.repo.clone();
        runtime.spawn(async move {
            if let Err(e) = repo.commit(batch).await {
                tracing::debug!(error = %e, "a session's last use was not stored");
            }
        });
    }

    /// What a caller sees of their session at `at`.
    fn info(&self, p: &Principal, s: &StoredSession, at: DateTime<Utc>) -> SessionInfo {
        let idle = (at + chrono_of(self.sessions.config.idle)).min(s.expires_at);
        SessionInfo {
            user: p.user.clone(),
            role: p.role,
            branch: p.branch.clone(),
            csrf_token: s.csrf.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            idle_expires_at: idle,
        }
    }
}
