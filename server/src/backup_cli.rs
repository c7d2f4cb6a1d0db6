//! `dealflow backup` and `dealflow restore`: the operator's command line
//! for backups. `backup` asks a running server for one (it needs the
//! server: the copy is taken while it serves, see `store::backup`) and
//! shows its progress; `restore` loads a backup into a new data directory
//! without a server, refusing a directory that holds data or that a running
//! server has open.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use crate::cli_client::Remote;
use crate::service::backup::{read_manifest, restore_into};
use crate::store::backup::{Phase, Progress};
use crate::store::{DataDir, Durability, SledStore, Store};

/// How often `dealflow backup` asks the server how far it is.
const POLL: Duration = Duration::from_millis(500);

/// Options of `dealflow backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The directory to write the backup to (new or empty), as the server
    /// sees it; a relative path is taken from this command's working
    /// directory.
    #[arg(long)]
    pub to: PathBuf,
    /// The server and an admin's token.
    #[command(flatten)]
    pub remote: Remote,
}

/// Options of `dealflow restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup directory (with its `manifest.json`).
    pub backup: PathBuf,
    /// The data directory to create: it must not exist or be empty, and no
    /// server may be running on it.
    #[arg(long)]
    pub data_dir: PathBuf,
}

/// Runs `dealflow backup`.
pub fn backup(args: BackupArgs) -> ExitCode {
    exit("backup", run_on_runtime(remote_backup(&args)))
}

/// Runs `dealflow restore`.
pub fn restore(args: RestoreArgs) -> ExitCode {
    exit("restore", run_on_runtime(restore_dir(&args)))
}

fn run_on_runtime(
    work: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(work)
}

fn exit(command: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndealflow {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

async fn remote_backup(args: &BackupArgs) -> Result<(), String> {
    let api = args.remote.client("an admin's")?;
    let to = std::path::absolute(&args.to).map_err(|e| format!("{}: {e}", args.to.display()))?;
    let started = std::time::Instant::now();
    let request = api.call(
        "POST",
        "/v1/admin/backup",
        Some(json!({"to": to.display().to_string()})),
    );
    tokio::pin!(request);
    let mut ticks = tokio::time::interval(POLL);
    let report = loop {
        tokio::select! {
            done = &mut request => break done?,
            _ = ticks.tick() => {
                if let Ok(status) = api.call("GET", "/v1/admin/backup", None).await {
                    crate::cli_client::progress_line("backup", &status_line(&status, started.elapsed()));
                }
            }
        }
    };
    let m = &report["manifest"];
    crate::cli_client::progress_line(
        "backup",
        &format!(
            "done: {} keys, {} in {} ms into {}",
            m["keys"],
            mib(m["bytes"].as_u64().unwrap_or(0)),
            report["took_ms"],
            to.display()
        ),
    );
    eprintln!();
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(())
}

fn status_line(status: &Value, elapsed: Duration) -> String {
    match status["phase"].as_str() {
        Some(phase) => format!(
            "{phase}, {} keys, {} ({} s)",
            status["keys"],
            mib(status["bytes"].as_u64().unwrap_or(0)),
            elapsed.as_secs()
        ),
        None => format!("starting ({} s)", elapsed.as_secs()),
    }
}

async fn restore_dir(args: &RestoreArgs) -> Result<(), String> {
    let manifest = read_manifest(&args.backup).map_err(|e| e.to_string())?;
    let target = &args.data_dir;
    match SledStore::data_dir_state(target).map_err(|e| format!("{}: {e}", target.display()))? {
        DataDir::Free => {}
        DataDir::InUse => {
            return Err(format!(
                "{} is in use by a running server (its store is locked): stop that server, or restore into a new --data-dir",
                target.display()
            ))
        }
        DataDir::HasData => {
            return Err(format!(
                "{} already holds data: restore only into a new or empty directory",
                target.display()
            ))
        }
    }
    // Loaded beside the target and renamed into place at the end, so a
    // restore cut short never leaves a data dir a server would start on.
    let staging = staging_dir(target)?;
    let loaded = load(&args.backup, &staging, &manifest).await;
    if let Err(e) = loaded {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    std::fs::rename(&staging, target).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        format!("{}: {e}", target.display())
    })?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    crate::cli_client::progress_line(
        "restore",
        &format!(
            "done: {} keys of the backup of {} into {}",
            manifest.keys,
            manifest
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            target.display()
        ),
    );
    eprintln!();
    Ok(())
}

/// A new directory beside `target` to load into.
fn staging_dir(target: &Path) -> Result<PathBuf, String> {
    let name = target
        .file_name()
        .ok_or_else(|| format!("{}: name a directory", target.display()))?;
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let staging = parent.join(format!(
        ".{}.restoring-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    Ok(staging)
}

async fn load(
    backup: &Path,
    into: &Path,
    manifest: &crate::service::backup::Manifest,
) -> Result<(), String> {
    let store = SledStore::open(into, Durability::None).map_err(|e| e.to_string())?;
    let total = manifest.keys.max(1);
    let progress = |p: Progress| {
        let verb = match p.phase {
            Phase::Verifying => "verifying",
            _ => "loading",
        };
        crate::cli_client::progress_line(
            "restore",
            &format!(
                "{verb} {}% ({} of {} keys)",
                p.keys * 100 / total,
                p.keys,
                manifest.keys
            ),
        );
    };
    restore_into(&store, backup, manifest, &progress)
        .await
        .map_err(|e| e.to_string())?;
    store.flush().map_err(|e| e.to_string())
}
