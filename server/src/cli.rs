//! The binary's commands: parse the command line and run `serve` (the
//! default), `policy`, `backup` or `restore`. The top of the module graph:
//! it starts the server and the command-line clients, nothing imports it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

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
