//! The `dealflow` binary's command line: help, and the admin token printed
//! once at first start. (Also makes `cargo test` build the binary that the
//! end-to-end tests in `tests/` run.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn dealflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dealflow"))
}

#[test]
fn help_names_the_serve_command_and_its_options() {
    let out = dealflow().arg("--help").output().expect("run dealflow");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve"), "{text}");
    let out = dealflow()
        .args(["serve", "--help"])
        .output()
        .expect("run dealflow");
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--listen",
        "--data-dir",
        "--log-format",
        "--durability",
        "DEALFLOW_DATA_DIR",
    ] {
        assert!(text.contains(opt), "missing {opt} in {text}");
    }
}

/// Starts the server on a free port with no admin token configured, reads
/// stdout until it is listening, stops it with SIGTERM and returns stdout.
fn start_and_stop(dir: &std::path::Path) -> (String, std::process::ExitStatus) {
    let mut child = dealflow()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir)
        .env_remove("DEALFLOW_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dealflow");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    for line in stderr.lines() {
        let line = line.expect("log line");
        if line.contains("dealflow listening") {
            break;
        }
    }
    // SAFETY-free signal: `kill` is the portable way to send SIGTERM here.
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status,
    )
}

#[test]
fn generated_admin_token_is_printed_once_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, status) = start_and_stop(dir.path());
    assert!(status.success(), "exit status {status:?}");
    assert!(first.contains("generated admin token"), "stdout: {first}");
    let (second, status) = start_and_stop(dir.path());
    assert!(status.success());
    assert!(!second.contains("dft_"), "token printed again: {second}");
}

#[test]
fn policy_test_runs_a_scripts_example_tests_locally() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/quote-late.rhai");
    let out = dealflow()
        .args(["policy", "test", script])
        .output()
        .expect("run dealflow");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("hooks guard"), "{text}");
    assert!(text.contains("6 passed, 0 failed"), "{text}");
}

#[test]
fn policy_test_fails_on_a_failing_example_test() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.rhai");
    std::fs::write(
        &file,
        "fn guard(i) { #{ allow: true } }\nfn test_fails() { assert(false, \"nope\"); }",
    )
    .expect("write");
    let out = dealflow()
        .args(["policy", "test"])
        .arg(&file)
        .output()
        .expect("run dealflow");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("test_fails"), "{err}");
}

#[test]
fn policy_test_on_many_files_shows_progress_goes_on_past_a_failure_and_sums_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.rhai");
    std::fs::write(
        &bad,
        "fn guard(i) { #{ allow: true } }\nfn test_fails() { assert(false, \"nope\"); }",
    )
    .expect("write");
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");
    let out = dealflow()
        .args(["policy", "test"])
        .arg(format!("{policies}/quote-late.rhai"))
        .arg(&bad)
        .arg(format!("{policies}/visit-cadence.rhai"))
        .output()
        .expect("run dealflow");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}{err}");
    for step in ["[1/3]", "[2/3]", "[3/3]"] {
        assert!(err.contains(step), "no progress {step}: {err}");
    }
    assert!(err.contains("test_fails"), "{err}");
    // The file after the failing one was still tested.
    assert!(text.contains("visit-cadence.rhai: hooks cadence"), "{text}");
    assert!(text.contains("3 file(s): 2 passed, 1 failed"), "{text}");
    assert!(err.contains("bad.rhai"), "{err}");
}
