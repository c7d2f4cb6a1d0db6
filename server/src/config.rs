//! The command line and its environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::store::Durability;

/// dealflow: key-account sales development server.
#[derive(Debug, Parser)]
#[command(name = "dealflow", version, about)]
pub struct Cli {
    /// What to do (`serve` when omitted).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage policies: test locally, or push, list, activate, roll back on a server.
    Policy(crate::policy_cli::PolicyArgs),
    /// Back up a running server's store into a new directory.
    Backup(crate::backup_cli::BackupArgs),
    /// Restore a backup into a new data directory (no server needed).
    Restore(crate::backup_cli::RestoreArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Options of `dealflow serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DEALFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the embedded database (created when missing).
    #[arg(long, env = "DEALFLOW_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The admin bearer token; generated and printed once at first start when unset.
    #[arg(long, env = "DEALFLOW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// When a write is acknowledged: after a shared flush (group), after its
    /// own flush (per-write), or without flushing (none: not durable).
    #[arg(long, env = "DEALFLOW_DURABILITY", value_enum, default_value = "group")]
    pub durability: Durability,
    /// Memory for the store's page cache, in MiB. Settling large periods
    /// reads every signed deal of the period: a cache that holds them is
    /// roughly twice as fast (BENCHMARKS.md).
    #[arg(long, env = "DEALFLOW_CACHE_MB", default_value_t = 1024)]
    pub cache_mb: u64,
    /// How many days the event log keeps events for clients resuming with
    /// `Last-Event-ID`.
    #[arg(long, env = "DEALFLOW_EVENT_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub event_retention_days: u64,
    /// The most events the log keeps (the oldest go first).
    #[arg(long, env = "DEALFLOW_EVENT_RETENTION_EVENTS", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub event_retention_events: u64,
    /// Hours a console session lasts without being used.
    #[arg(long, env = "DEALFLOW_SESSION_IDLE_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=24 * 365))]
    pub session_idle_hours: u64,
    /// Days a console session lasts at most, used or not.
    #[arg(long, env = "DEALFLOW_SESSION_MAX_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=365))]
    pub session_max_days: u64,
    /// Always mark the session cookie `Secure` (set it when a TLS proxy
    /// serves the console over https without saying so in
    /// `X-Forwarded-Proto`).
    #[arg(long, env = "DEALFLOW_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Log format.
    #[arg(long, env = "DEALFLOW_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// The event log's retention these options ask for.
    pub fn event_retention(&self) -> crate::service::Retention {
        crate::service::Retention {
            max_age: std::time::Duration::from_secs(self.event_retention_days * 24 * 3600),
            max_events: self.event_retention_events,
        }
    }
}

impl ServeArgs {
    /// How long console sessions last, as these options ask.
    pub fn sessions(&self) -> crate::service::SessionConfig {
        crate::service::SessionConfig {
            idle: std::time::Duration::from_secs(self.session_idle_hours * 3600),
            max_age: std::time::Duration::from_secs(self.session_max_days * 24 * 3600),
            secure_cookies: self.secure_cookies,
        }
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs::parse_from(["serve"])
    }
}

impl Parser for ServeArgs {}

impl clap::CommandFactory for ServeArgs {
    fn command() -> clap::Command {
        <Self as clap::Args>::augment_args(clap::Command::new("serve"))
    }
    fn command_for_update() -> clap::Command {
        <Self as clap::Args>::augment_args_for_update(clap::Command::new("serve"))
    }
}

impl Cli {
    /// Runs the command; the exit code reports success.
    pub fn run(self) -> ExitCode {
        let args = match self.command {
            Some(Command::Serve(a)) => a,
            Some(Command::Policy(p)) => return crate::policy_cli::run(p),
            Some(Command::Backup(b)) => return crate::backup_cli::backup(b),
            Some(Command::Restore(r)) => return crate::backup_cli::restore(r),
            None => ServeArgs::default(),
        };

        crate::telemetry::init(args.log_format);
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("dealflow: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match rt.block_on(crate::server::serve(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "dealflow stopped");
                eprintln!("dealflow: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
