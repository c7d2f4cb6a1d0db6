//! Backups through the API and restores from the command line, around the
//! store's consistent online copy (`store::backup`): the checks on the
//! target directory, one backup at a time with its progress, the manifest
//! that makes a backup directory self-describing, and loading a backup into
//! a new store once it matches its manifest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::upgrade::SCHEMA;
use super::{now, ServiceError, Services};
use crate::auth::Principal;
use crate::store::backup::{self, Phase, Progress, ProgressFn};
use crate::store::{Store, StoreError};

/// The manifest's name in a backup directory (written last).
pub const MANIFEST_FILE: &str = "manifest.json";
/// What a manifest's `format` says.
pub const FORMAT: &str = "dealflow-backup";
/// The backup format this server writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a backup directory holds, in its `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    /// Always `dealflow-backup`.
    pub format: String,
    /// The backup format's version (1).
    pub format_version: u32,
    /// The store schema of the data (a newer server upgrades it at start).
    pub schema: u32,
    /// The server version that wrote it.
    pub server_version: String,
    /// The moment the copy is of: every write acknowledged before it is in
    /// the copy, none after it.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// Keys in the data file.
    pub keys: u64,
    /// Bytes of the data file.
    pub bytes: u64,
    /// SHA-256 of the data file, hex.
    pub sha256: String,
    /// The data file's name in the directory.
    pub data_file: String,
}

/// Body of `POST /v1/admin/backup`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// An absolute path on the server's machine: a new or empty directory.
    #[schema(min_length = 2, max_length = 4096, pattern = "^/[^\\x00]*[^/\\x00]$")]
    pub to: String,
}

/// Response of `POST /v1/admin/backup`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupReport {
    /// Where the backup is.
    pub to: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// Keys written while it ran (their values as of `created_at` are in it).
    pub written_meanwhile: u64,
}

/// `GET /v1/admin/backup`: the backup running now, if any.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct BackupStatus {
    /// True while a backup runs.
    pub running: bool,
    /// Its target directory.
    pub to: Option<String>,
    /// When it started.
    #[serde(with = "crate::domain::time::ms_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// What it is doing.
    pub phase: Option<Phase>,
    /// Keys done in this phase.
    pub keys: u64,
    /// Bytes done in this phase.
    pub bytes: u64,
}

/// The running backup, if any.
#[derive(Default)]
pub(crate) struct Backups {
    /// What `GET /v1/admin/backup` shows.
    status: Mutex<BackupStatus>,
}

impl Backups {
    /// Claims the one backup slot, or 409.
    fn claim(self: &Arc<Self>, to: &str, at: DateTime<Utc>) -> Result<Claim, ServiceError> {
        let mut status = self.status.lock();
        if status.running {
            return Err(ServiceError::WrongState {
                code: "backup_running",
                message: format!(
                    "a backup into `{}` is running; wait for it to finish",
                    status.to.as_deref().unwrap_or("")
                ),
            });
        }
        *status = BackupStatus {
            running: true,
            to: Some(to.to_string()),
            started_at: Some(at),
            phase: Some(Phase::Scanning),
            keys: 0,
            bytes: 0,
        };
        Ok(Claim(Arc::clone(self)))
    }

    fn progress(&self, p: Progress) {
        let mut status = self.status.lock();
        status.phase = Some(p.phase);
        status.keys = p.keys;
        status.bytes = p.bytes;
    }
}

/// The claimed backup slot, released when dropped.
struct Claim(Arc<Backups>);

impl Claim {
    fn progress(&self, p: Progress) {
        self.0.progress(p);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        *self.0.status.lock() = BackupStatus::default();
    }
}

/// Checks `to` and creates it when missing: an absolute path to a new or
/// empty directory.
fn target_dir(to: &str) -> Result<PathBuf, ServiceError> {
    let refuse = |reason: String| Err(ServiceError::invalid("to", reason));
    let path = PathBuf::from(to);
    if to.trim().is_empty() || !path.is_absolute() {
        return refuse(format!(
            "must be an absolute path on the server's machine, not `{to}`"
        ));
    }
    match std::fs::read_dir(&path).map(|mut entries| entries.next().is_none()) {
        Ok(false) => refuse(format!(
            "is not empty (`{to}`): a backup goes into a new or empty directory, never over another"
        )),
        Ok(true) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::create_dir_all(&path) {
                Ok(()) => Ok(path),
                Err(e) => refuse(format!("cannot be created (`{to}`): {e}")),
            }
        }
        Err(_) if path.is_file() => refuse(format!("is a file, not a directory (`{to}`)")),
        Err(e) => refuse(format!("cannot be read (`{to}`): {e}")),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> ServiceError {
    ServiceError::Store(StoreError::Backend(format!("{}: {e}", path.display())))
}

/// Writes the manifest beside the data, durably, under its final name only
/// once it is complete.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), ServiceError> {
    let partial = dir.join(format!("{MANIFEST_FILE}.partial"));
    let text = serde_json::to_vec_pretty(manifest).expect("a manifest serialises");
    let mut file = std::fs::File::create(&partial).map_err(|e| io_error(&partial, e))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&partial, e))?;
    std::fs::rename(&partial, dir.join(MANIFEST_FILE)).map_err(|e| io_error(dir, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

impl Services {
    /// Takes a consistent copy of the whole store into `req.to` while the
    /// server serves (admin only); one backup at a time.
    pub async fn backup(
        &self,
        caller: &Principal,
        req: BackupRequest,
    ) -> Result<BackupReport, ServiceError> {
        caller.require_admin()?;
        let started_at = now();
        let claim = self.backups.claim(&req.to, started_at)?;
        let dir = target_dir(&req.to)?;
        let store = self.repo.shared_store();
        // The copy and its manifest are written on a blocking thread that
        // holds the claim to the end, even if the client goes away.
        let (copy, manifest) = tokio::task::spawn_blocking(move || {
            let copy = store.backup(&dir, &|p| claim.progress(p))?;
            let manifest = Manifest {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                schema: SCHEMA,
                server_version: env!("CARGO_PKG_VERSION").into(),
                created_at: {
                    use chrono::SubsecRound;
                    copy.consistent_at.trunc_subsecs(3)
                },
                keys: copy.keys,
                bytes: copy.bytes,
                sha256: copy.sha256.clone(),
                data_file: backup::DATA_FILE.into(),
            };
            write_manifest(&dir, &manifest)?;
            Ok::<_, ServiceError>((copy, manifest))
        })
        .await
        .map_err(|e| ServiceError::Store(StoreError::Backend(e.to_string())))??;
        let took_ms = (now() - started_at).num_milliseconds().max(0) as u64;
        tracing::info!(to = %req.to, keys = manifest.keys, took_ms, "backup written");
        Ok(BackupReport {
            to: req.to,
            manifest,
            took_ms,
            written_meanwhile: copy.written_meanwhile,
        })
    }

    /// The backup running now, if any (admin only).
    pub fn backup_status(&self, caller: &Principal) -> Result<BackupStatus, ServiceError> {
        caller.require_admin()?;
        Ok(self.backups.status.lock().clone())
    }
}

/// Reads a backup's manifest and checks that this server can restore it.
pub fn read_manifest(dir: &Path) -> Result<Manifest, ServiceError> {
    let name = dir.display().to_string();
    let refuse = |reason: String| Err(ServiceError::invalid(name.clone(), reason));
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return refuse(format!(
                "has no {MANIFEST_FILE}: it is not a dealflow backup, or one that did not finish"
            ))
        }
        Err(e) => return refuse(format!("cannot be read: {e}")),
    };
    let manifest = match serde_json::from_slice::<Manifest>(&text) {
        Ok(m) if m.format == FORMAT => m,
        _ => {
            return refuse(format!(
                "has a {MANIFEST_FILE} that is not a dealflow backup's"
            ))
        }
    };
    if manifest.format_version > FORMAT_VERSION {
        return refuse(format!(
            "is in backup format {}; this dealflow reads up to format {FORMAT_VERSION}",
            manifest.format_version
        ));
    }
    if manifest.schema > SCHEMA {
        return refuse(format!(
            "holds a store of schema {}, newer than this dealflow's ({SCHEMA}): restore it with the dealflow that wrote it",
            manifest.schema
        ));
    }
    Ok(manifest)
}

/// Loads the backup in `dir` into `store` (new and empty): its data file is
/// first read through and checked against the manifest, so a damaged
/// backup loads nothing.
pub async fn restore_into(
    store: &dyn Store,
    dir: &Path,
    manifest: &Manifest,
    progress: ProgressFn<'_>,
) -> Result<(), ServiceError> {
    let data = dir.join(&manifest.data_file);
    let damaged = |what: &str| {
        Err(ServiceError::invalid(
            dir.display().to_string(),
            format!("is damaged: its data file's {what} does not match the manifest's"),
        ))
    };
    let (keys, bytes, sha256) = backup::verify(&data, progress)?;
    if sha256 != manifest.sha256 {
        return damaged("checksum");
    }
    if (keys, bytes) != (manifest.keys, manifest.bytes) {
        return damaged("size");
    }
    let (keys, _, sha256) = backup::load(store, &data, progress).await?;
    if sha256 != manifest.sha256 || keys != manifest.keys {
        return damaged("checksum");
    }
    Ok(())
}
