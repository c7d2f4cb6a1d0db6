//! The README's shell examples, run as written against the built server.
//!
//! Every ```` ```sh ```` block of `README.md` (except those whose info
//! string says `no-run`, such as the two commands that build and test the
//! workspace) is joined, in order, into one bash script run with
//! `set -eo pipefail` in an empty directory. Two small shims stand first on
//! the `PATH`:
//! - `cargo`: `cargo run … -p dealflow [-- ARGS]` runs the binary this test
//!   build made (a release build inside a test would take minutes and fight
//!   the outer cargo for its lock), and `cargo build … -p PLUGIN` copies the
//!   plugin `tests/build.rs` built to the path the README reads it from;
//!   anything else fails the test.
//! - `curl`: runs the real curl and logs every response's status.
//!
//! A response that is not 2xx must be announced by the text: the README
//! marks each expected failure with a `# expect NNN` comment, and the
//! non-2xx statuses seen, in order, must be exactly those announced. A
//! failing `dealflow policy` command stops the script (`set -e`).
//!
//! The same binary keeps the documentation true and self-contained:
//! `docs/http-reference.md` is rendered from the OpenAPI document
//! (`http_reference`) and must match the committed file (`UPDATE_DOCS=1`
//! rewrites it), and every relative link of the README and of `docs/`
//! leads to a file of the repository (and to a heading of it, for `#…`).

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dealflow_tests::{dealflow_binary, ensure_command};

mod http_reference;

/// Longest the whole script may run.
const DEADLINE: Duration = Duration::from_secs(300);

/// A fenced block of the README: the line it starts on and its text.
struct Block {
    line: usize,
    text: String,
}

/// The README's ```` ```sh ```` blocks that are meant to run.
fn runnable_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, bool, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        match &mut current {
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    let runs = words.next() == Some("sh") && !words.any(|w| w == "no-run");
                    current = Some((i + 1, runs, String::new()));
                }
            }
            Some((start, runs, text)) => {
                if line.trim_start().starts_with("```") {
                    if *runs {
                        blocks.push(Block {
                            line: *start,
                            text: std::mem::take(text),
                        });
                    }
                    current = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    blocks
}

/// The statuses the text announces with `# expect NNN`, in order.
fn announced(script: &str) -> Vec<u16> {
    script
        .lines()
        .filter_map(|l| l.split("# expect ").nth(1))
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("write shim");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod shim");
}

/// The `cargo` and `curl` shims (see the module docs).
fn shims(dir: &Path, real_curl: &str) {
    write_executable(
        &dir.join("cargo"),
        r#"#!/usr/bin/env bash
# The README's cargo commands, answered by what the test build made.
cmd=$1; shift
package=""; args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release|-q|--quiet) shift ;;
    --target) shift 2 ;;
    -p|--package) package=$2; shift 2 ;;
    --) shift; args=("$@"); break ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$cmd:$package" in
  run:dealflow) exec "$README_DEALFLOW_BIN" "${args[@]}" ;;
  build:*)
    var="README_PLUGIN_$(echo "$package" | tr 'a-z-' 'A-Z_')"
    src=${!var:?"no plugin $package in this test build"}
    mkdir -p target/wasm32-unknown-unknown/release
    cp "$src" "target/wasm32-unknown-unknown/release/$(echo "$package" | tr '-' '_').wasm" ;;
  *) echo "README test: cannot run 'cargo $cmd -p $package'" >&2; exit 2 ;;
esac
"#,
    );
    write_executable(
        &dir.join("curl"),
        &format!(
            r#"#!/usr/bin/env bash
# The real curl, with every response's status logged.
body=$(mktemp)
code=$({real_curl} "$@" -o "$body" -w '%{{http_code}}')
rc=$?
cat "$body"; rm -f "$body"
args="$*"
[ "$code" != "000" ] && echo "$code curl ${{args//$'\n'/ }}" >> "$README_CURL_LOG"
exit $rc
"#
        ),
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn the_readme_examples_run_as_written() {
    // Given the tools the README's examples use, and its runnable blocks as one script
    for (command, package) in [("curl", "curl"), ("jq", "jq")] {
        ensure_command(command, package);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 3, "the README has too few runnable blocks");
    let mut script =
        String::from("set -eo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n");
    for b in &blocks {
        script.push_str(&format!("\n# --- README.md line {}\n{}", b.line, b.text));
    }
    let expected = announced(&script);

    let work = tempfile::tempdir().expect("tempdir");
    let bin = work.path().join(".shims");
    std::fs::create_dir(&bin).expect("shim dir");
    let real_curl = String::from_utf8(
        Command::new("bash")
            .args(["-c", "command -v curl"])
            .output()
            .expect("bash")
            .stdout,
    )
    .expect("utf-8");
    assert!(!real_curl.trim().is_empty(), "curl is needed for this test");
    shims(&bin, real_curl.trim());
    let log = work.path().join(".curl.log");
    std::fs::File::create(&log).expect("log");
    let script_path = work.path().join(".readme.sh");
    std::fs::File::create(&script_path)
        .and_then(|mut f| f.write_all(script.as_bytes()))
        .expect("script");

    // When bash runs it in an empty directory, the server on a free port
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg(&script_path)
        .current_dir(work.path())
        .env("PATH", path)
        .env("DEALFLOW_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("README_DEALFLOW_BIN", dealflow_binary())
        .env(
            "README_PLUGIN_LARGE_DEAL_GUARD",
            dealflow_tests::PLUGIN_LARGE_DEAL_GUARD,
        )
        .env("README_CURL_LOG", &log)
        .env_remove("DEALFLOW_TOKEN")
        .env_remove("DEALFLOW_ADMIN_TOKEN")
        .env_remove("DEALFLOW_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run bash");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever happened, nothing the script started outlives the test.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let out = child.wait_with_output().expect("output");
    let output = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    if std::env::var_os("README_TEST_ECHO").is_some() {
        eprintln!("{output}");
    }
    // Then it ran to the end, and every failing response was announced
    let status =
        status.unwrap_or_else(|| panic!("the README script ran past {DEADLINE:?}\n{output}"));
    assert!(
        status.success(),
        "the README script failed ({status})\n{output}"
    );
    let calls = std::fs::read_to_string(&log).expect("log");
    assert!(calls.lines().count() > 10, "too few requests: {calls}");
    let failures: Vec<&str> = calls.lines().filter(|l| !l.starts_with('2')).collect();
    let seen: Vec<u16> = failures
        .iter()
        .filter_map(|l| l.get(..3)?.parse().ok())
        .collect();
    assert_eq!(
        seen, expected,
        "non-2xx responses the README does not announce (or announced ones that did not happen):\n{}\n{output}",
        failures.join("\n")
    );
}

#[test]
fn the_http_reference_is_generated_from_the_openapi_document() {
    // Given the OpenAPI document the server publishes
    let doc = serde_json::to_value(dealflow::api::openapi()).expect("the document serialises");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("docs/http-reference.md");

    // When it is rendered as Markdown
    let rendered = http_reference::render(&doc);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &rendered).expect("write docs/http-reference.md");
    }

    // Then the committed reference is exactly that
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != rendered {
        let line = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
        panic!(
            "docs/http-reference.md is stale: it differs from the OpenAPI document from line {} on \
             (committed: {:?}, generated: {:?}). Regenerate it with\n  \
             UPDATE_DOCS=1 cargo test -p dealflow-tests --test readme http_reference\n\
             and commit the result.",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            rendered.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// The relative links (`[text](target)`) of a Markdown text, outside code.
fn relative_links(markdown: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop inline code spans: `](` inside them is no link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let target = rest.split(')').next().unwrap_or_default();
            if !target.contains("://") && !target.starts_with("mailto:") {
                links.push(target.to_string());
            }
        }
    }
    links
}

#[test]
fn the_documentation_links_lead_inside_the_repository() {
    // Given the README and every page of docs/
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf();
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("a docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    assert!(pages.len() >= 5, "docs/ holds too few pages: {pages:?}");

    // When every relative link is followed
    let root = root.canonicalize().expect("the workspace root");
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page");
        let name = page
            .strip_prefix(&root)
            .unwrap_or(page)
            .display()
            .to_string();
        for link in relative_links(&text) {
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().expect("a directory").join(file)
            };
            let Ok(target) = target.canonicalize() else {
                broken.push(format!("{name}: `{link}` leads to no file"));
                continue;
            };
            if !target.starts_with(&root) {
                broken.push(format!("{name}: `{link}` leads outside the repository"));
                continue;
            }
            if !anchor.is_empty() {
                let headings = std::fs::read_to_string(&target).unwrap_or_default();
                let found = headings
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .map(|h| http_reference::anchor(h.trim_start_matches('#').trim()))
                    .any(|a| a == anchor);
                if !found {
                    broken.push(format!("{name}: `{link}` names no heading of its page"));
                }
            }
        }
        // Then nothing refers to notes kept outside the repository either
        if text.contains("../shared") {
            broken.push(format!(
                "{name}: refers to `../shared`, outside the repository"
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "broken documentation links:\n{}",
        broken.join("\n")
    );
}
