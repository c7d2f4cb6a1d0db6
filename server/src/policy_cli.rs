//! `dealflow policy …`: the admin's command line for policies. `test` runs
//! a policy's example tests locally without a server (like `opa test`);
//! the other commands talk to a running server with a bearer token.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli_client::Remote;
use crate::policy::executor::Executor;
use crate::policy::live::Runtime;
use crate::policy::Limits;

/// Options of `dealflow policy`.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// The server and token.
    #[command(flatten)]
    pub remote: Remote,
    /// What to do.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// Policy subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// Compile a policy file and run its example tests locally (no server).
    Test {
        /// `.rhai` scripts and `.wasm` components/modules (one or many; a
        /// progress line on stderr when there are several).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Upload a new version (does not activate unless --activate).
    Push {
        /// A `.rhai` script or a `.wasm` component/module.
        file: PathBuf,
        /// Policy name (default: the file name without extension).
        #[arg(long)]
        name: Option<String>,
        /// `global` or `branch:<id>`.
        #[arg(long, default_value = "global")]
        scope: String,
        /// Activate the uploaded version at once.
        #[arg(long)]
        activate: bool,
    },
    /// List policies and their active versions.
    List,
    /// Make a version live.
    Activate {
        /// Policy name.
        name: String,
        /// Version.
        version: u64,
        /// For bonus rules: the business day (YYYY-MM-DD) from which this
        /// applies; subjects before it keep the version in force then.
        /// Without it, it applies to every day, and the next settlement
        /// trues up what was paid.
        #[arg(long, value_name = "DAY")]
        effective_from: Option<String>,
    },
    /// Re-activate the version that was live before the current one.
    Rollback {
        /// Policy name.
        name: String,
        /// For bonus rules: the business day (YYYY-MM-DD) from which this
        /// applies; subjects before it keep the version in force then.
        /// Without it, it applies to every day, and the next settlement
        /// trues up what was paid.
        #[arg(long, value_name = "DAY")]
        effective_from: Option<String>,
    },
    /// Stop a policy deciding (no version live; the scope falls back to
    /// what it inherits). Its versions stay for a later activation.
    Deactivate {
        /// Policy name.
        name: String,
        /// For bonus rules: the business day (YYYY-MM-DD) from which this
        /// applies; subjects before it keep the version in force then.
        /// Without it, it applies to every day, and the next settlement
        /// trues up what was paid.
        #[arg(long, value_name = "DAY")]
        effective_from: Option<String>,
    },
}

fn runtime_of(file: &Path) -> Result<Runtime, String> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("rhai") => Ok(Runtime::Rhai),
        Some("wasm") => Ok(Runtime::Wasm),
        _ => Err(format!(
            "{}: expected a .rhai or .wasm file",
            file.display()
        )),
    }
}

/// Runs a policy subcommand.
pub fn run(args: PolicyArgs) -> ExitCode {
    let result = match &args.command {
        PolicyCommand::Test { files } => test_files(files),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(remote(&args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dealflow policy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Tests every file, with one engine, going on past a failing one; fails
/// when any failed.
fn test_files(files: &[PathBuf]) -> Result<(), String> {
    let executor = Executor::new(Limits::default(), 1).map_err(|e| e.to_string())?;
    let mut failed = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if files.len() > 1 {
            crate::cli_client::progress_line(
                "dealflow policy test",
                &format!("[{}/{}] {}", i + 1, files.len(), file.display()),
            );
        }
        if let Err(e) = test_locally(&executor, file) {
            eprintln!("{e}");
            failed.push(file.display().to_string());
        }
    }
    if files.len() > 1 {
        eprintln!();
        println!(
            "{} file(s): {} passed, {} failed",
            files.len(),
            files.len() - failed.len(),
            failed.len()
        );
    }
    match failed.as_slice() {
        [] => Ok(()),
        [one] if files.len() == 1 => Err(format!("{one} failed")),
        many => Err(format!("failed: {}", many.join(", "))),
    }
}

fn test_locally(executor: &Executor, file: &Path) -> Result<(), String> {
    let runtime = runtime_of(file)?;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let exec = executor
        .compile(runtime, &bytes)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let hooks: Vec<&str> = exec.hooks().iter().map(|h| h.name()).collect();
    println!("{}: hooks {}", file.display(), hooks.join(", "));
    for t in exec.tests() {
        println!("test {t} ... ok");
    }
    println!("{} passed, 0 failed", exec.tests().len());
    Ok(())
}

async fn remote(args: &PolicyArgs) -> Result<(), String> {
    let api = args.remote.client("an admin's or manager's")?;
    match &args.command {
        PolicyCommand::Test { .. } => unreachable!("handled locally"),
        PolicyCommand::Push {
            file,
            name,
            scope,
            activate,
        } => {
            let runtime = runtime_of(file)?;
            let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let name = name.clone().unwrap_or_else(|| {
                file.file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("policy")
                    .to_string()
            });
            let mut body = json!({"name": name, "scope": scope});
            match runtime {
                Runtime::Rhai => {
                    body["runtime"] = json!("rhai");
                    body["source"] =
                        json!(String::from_utf8(bytes).map_err(|_| "the script is not UTF-8")?);
                }
                Runtime::Wasm => {
                    body["runtime"] = json!("wasm");
                    body["module"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                }
            }
            let up = api.call("POST", "/v1/policies", Some(body)).await?;
            println!("{}", up);
            if *activate {
                let v = up["version"].as_u64().ok_or("no version in the answer")?;
                let p = api
                    .call(
                        "POST",
                        &format!("/v1/policies/{name}/versions/{v}/activate"),
                        None,
                    )
                    .await?;
                println!("{p}");
            }
        }
        PolicyCommand::List => {
            let page = api.call("GET", "/v1/policies?limit=500", None).await?;
            for p in page["items"].as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<20} latest v{:<4} active {}",
                    p["name"].as_str().unwrap_or(""),
                    p["scope"].as_str().unwrap_or(""),
                    p["latest_version"],
                    p["active_version"]
                );
            }
        }
        PolicyCommand::Activate {
            name,
            version,
            effective_from,
        } => {
            let p = api
                .call(
                    "POST",
                    &format!("/v1/policies/{name}/versions/{version}/activate"),
                    dated(effective_from),
                )
                .await?;
            println!("{p}");
        }
        PolicyCommand::Rollback {
            name,
            effective_from,
        } => {
            let p = api
                .call("GET", &format!("/v1/policies/{name}"), None)
                .await?;
            let current = p["active_version"].as_u64();
            let previous = p["activations"]
                .as_array()
                .into_iter()
                .flatten()
                .rev()
                .filter_map(|a| a["version"].as_u64())
                .find(|v| Some(*v) != current)
                .ok_or_else(|| nothing_to_roll_back(name, current))?;
            let p = api
                .call(
                    "POST",
                    &format!("/v1/policies/{name}/versions/{previous}/activate"),
                    dated(effective_from),
                )
                .await?;
            println!("{p}");
        }
        PolicyCommand::Deactivate {
            name,
            effective_from,
        } => {
            let p = api
                .call(
                    "POST",
                    &format!("/v1/policies/{name}/deactivate"),
                    dated(effective_from),
                )
                .await?;
            println!("{p}");
        }
    }
    Ok(())
}

/// The body of an activation or deactivation from a day, if one is given.
fn dated(effective_from: &Option<String>) -> Option<Value> {
    effective_from
        .as_ref()
        .map(|day| json!({"effective_from": day}))
}

/// Why a rollback cannot happen, and what to do instead.
fn nothing_to_roll_back(name: &str, current: Option<u64>) -> String {
    match current {
        Some(v) => format!(
            "`{name}` has had no version active before v{v}, so there is nothing to roll back to. \
             To stop it deciding, run `dealflow policy deactivate {name}` (the scope then falls \
             back to the policies it inherits); to switch versions, `dealflow policy activate {name} <version>`."
        ),
        None => format!(
            "`{name}` has never had a version active; activate one with \
             `dealflow policy activate {name} <version>`."
        ),
    }
}
