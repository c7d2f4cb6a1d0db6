//! The admin's policy CLI against the real binary on a loopback port:
//! push, list, activate, rollback and deactivate.

use std::process::Command;

use dealflow_tests::{dealflow_binary, start_binary, ADMIN};

fn policy_cli(base: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(dealflow_binary())
        .arg("policy")
        .args(args)
        .env("DEALFLOW_URL", base)
        .env("DEALFLOW_TOKEN", ADMIN)
        .output()
        .expect("run dealflow policy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn push_list_activate_and_rollback_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scripts = tempfile::tempdir().expect("tempdir");
    let mut server = start_binary(dir.path());
    let base = server.base.clone();

    // Given a new version of quote-late on disk
    let file = scripts.path().join("quote-late.rhai");
    std::fs::write(&file, "fn guard(i) { #{ allow: true } }\nfn test_allows() { assert(guard(#{}).allow, \"allow\"); }")
        .expect("write");
    let file = file.to_str().expect("utf-8 path");

    // When it is pushed and activated
    let (ok, out) = policy_cli(&base, &["push", file, "--activate"]);
    assert!(ok, "{out}");
    assert!(out.contains("\"version\":2"), "{out}");
    let (ok, out) = policy_cli(&base, &["list"]);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("quote-late"))
        .expect("listed");
    assert!(line.contains("active 2"), "{line}");

    // When it is rolled back, version 1 is live again
    let (ok, out) = policy_cli(&base, &["rollback", "quote-late"]);
    assert!(ok, "{out}");
    assert!(out.contains("\"active_version\":1"), "{out}");
    let (ok, out) = policy_cli(&base, &["activate", "quote-late", "2"]);
    assert!(ok, "{out}");
    assert!(out.contains("\"active_version\":2"), "{out}");

    // An invalid script is refused with the compiler's message
    std::fs::write(scripts.path().join("bad.rhai"), "fn guard(i) { let = ; }").expect("write");
    let bad = scripts.path().join("bad.rhai");
    let (ok, out) = policy_cli(&base, &["push", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("policy_invalid"), "{out}");

    // Given a branch policy pushed and activated for the first time
    let guard = scripts.path().join("sh-guard.rhai");
    std::fs::write(&guard, "fn guard(i) { #{ allow: true } }").expect("write");
    let (ok, out) = policy_cli(
        &base,
        &[
            "push",
            guard.to_str().unwrap(),
            "--scope",
            "global",
            "--activate",
        ],
    );
    assert!(ok, "{out}");
    // When it is rolled back, there is nothing to roll back to, and the message says what to do
    let (ok, out) = policy_cli(&base, &["rollback", "sh-guard"]);
    assert!(!ok, "{out}");
    assert!(out.contains("nothing to roll back to"), "{out}");
    assert!(out.contains("dealflow policy deactivate sh-guard"), "{out}");
    // When it is deactivated instead, no version of it is live any more
    let (ok, out) = policy_cli(&base, &["deactivate", "sh-guard"]);
    assert!(ok, "{out}");
    assert!(out.contains("\"active_version\":null"), "{out}");
    let (ok, out) = policy_cli(&base, &["list"]);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("sh-guard"))
        .expect("listed");
    assert!(line.contains("active null"), "{line}");

    server.child.kill().expect("stop");
    let _ = server.child.wait();
}
