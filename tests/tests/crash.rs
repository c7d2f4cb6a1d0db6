//! Durability over a real socket: run the real `dealflow` binary on a
//! loopback port, make acknowledged writes, SIGKILL it right after the last
//! acknowledgement, restart it on the same data directory and find every
//! acknowledged write. And backups: one taken with `dealflow backup` while
//! writers hammer the server, restored with `dealflow restore` after a
//! SIGKILL, holds every write acknowledged before it began, untorn.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use dealflow_tests::{call, http_client, run_cli, start_binary as start, HttpClient, ADMIN};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client: HttpClient = http_client();

    // Given a server with a branch, a brand and a customer
    let mut server = start(dir.path());
    let base = server.base.clone();
    let post =
        |path: &str, body: Value| call(&client, Method::POST, format!("{base}{path}"), Some(body));
    assert_eq!(
        post("/v1/branches", json!({"id": "sh", "name": "Shanghai"}))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(
            "/v1/brands",
            json!({"id": "volvo", "name": "Volvo", "introduced_at": "2026-01-01"})
        )
        .await
        .0,
        StatusCode::CREATED
    );

    // When many clients write concurrently (customers, deals, transitions)
    // and the server is killed right after the last acknowledgement
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..15 {
                let (s, c) = call(
                    &client,
                    Method::POST,
                    format!("{base}/v1/customers"),
                    Some(
                        json!({"name": format!("c{worker}-{i}"), "branch": "sh", "owner": "li",
                                "segment": "enterprise", "source": "self_developed"}),
                    ),
                )
                .await;
                assert_eq!(s, StatusCode::CREATED, "{c}");
                let customer = c["id"].as_str().unwrap().to_string();
                let (s, d) = call(
                    &client,
                    Method::POST,
                    format!("{base}/v1/deals"),
                    Some(dealflow_tests::deal_body(&customer, "li", "volvo")),
                )
                .await;
                assert_eq!(s, StatusCode::CREATED, "{d}");
                let deal = d["id"].as_str().unwrap().to_string();
                let (s, m) = call(
                    &client,
                    Method::POST,
                    format!("{base}/v1/deals/{deal}/transitions"),
                    Some(json!({"to": "qualify"})),
                )
                .await;
                assert_eq!(s, StatusCode::OK, "{m}");
                acked.push((customer, deal, m["version"].as_u64().unwrap()));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("worker"));
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");

    // Then after a restart every acknowledged write is there
    let server = start(dir.path());
    let base = server.base.clone();
    for (customer, deal, version) in &acked {
        let (s, c) = call(
            &client,
            Method::GET,
            format!("{base}/v1/customers/{customer}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "customer {customer} lost: {c}");
        let (s, d) = call(
            &client,
            Method::GET,
            format!("{base}/v1/deals/{deal}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "deal {deal} lost: {d}");
        assert_eq!(d["stage"], "qualify", "transition of {deal} lost");
        assert_eq!(d["version"].as_u64(), Some(*version));
        let (_, h) = call(
            &client,
            Method::GET,
            format!("{base}/v1/deals/{deal}/history"),
            None,
        )
        .await;
        assert_eq!(
            h["items"].as_array().map(Vec::len),
            Some(2),
            "history of {deal}: {h}"
        );
    }
    assert_eq!(acked.len(), 120);
    let mut server = server;
    server.child.kill().expect("stop");
    let _ = server.child.wait();
}

/// A deal one of the writers made, with what was acknowledged.
#[derive(Debug, Clone)]
struct Written {
    deal: String,
    customer: String,
    /// The deal's last version acknowledged before the backup began.
    before_backup: Option<u64>,
}

/// Every item of a list, following its cursors.
async fn list_all(client: &HttpClient, base: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{base}{path}{sep}limit=500&cursor={cursor}");
        let (s, page) = call(client, Method::GET, url, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {page}");
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return items,
        }
    }
}

fn ids_of(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_write_acknowledged_before_it_untorn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let client: HttpClient = http_client();

    // Given a server with a branch and a brand
    let mut server = start(dir.path());
    let base = server.base.clone();
    for (path, body) in [
        ("/v1/branches", json!({"id": "sh", "name": "Shanghai"})),
        (
            "/v1/brands",
            json!({"id": "volvo", "name": "Volvo", "introduced_at": "2026-01-01"}),
        ),
    ] {
        let (s, b) = call(&client, Method::POST, format!("{base}{path}"), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    // And six writers creating customers and deals and moving them, over
    // the socket, until told to stop
    let began = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for worker in 0..6 {
        let (client, base) = (client.clone(), base.clone());
        let (began, stop, acked) = (Arc::clone(&began), Arc::clone(&stop), Arc::clone(&acked));
        writers.push(tokio::spawn(async move {
            let owner = if worker % 2 == 0 { "li" } else { "zhao" };
            let mut written = Vec::new();
            let mut i = 0;
            // (bounded, should the stop never come)
            while !stop.load(Ordering::SeqCst) && i < 400 {
                i += 1;
                let (s, c) = call(
                    &client,
                    Method::POST,
                    format!("{base}/v1/customers"),
                    Some(
                        json!({"name": format!("c{worker}-{i}"), "branch": "sh", "owner": owner,
                                "segment": "enterprise", "source": "self_developed"}),
                    ),
                )
                .await;
                assert_eq!(s, StatusCode::CREATED, "{c}");
                let (s, d) = call(
                    &client,
                    Method::POST,
                    format!("{base}/v1/deals"),
                    Some(dealflow_tests::deal_body(
                        c["id"].as_str().unwrap(),
                        owner,
                        "volvo",
                    )),
                )
                .await;
                assert_eq!(s, StatusCode::CREATED, "{d}");
                let mut w = Written {
                    deal: d["id"].as_str().unwrap().to_string(),
                    customer: c["id"].as_str().unwrap().to_string(),
                    before_backup: (!began.load(Ordering::SeqCst)).then_some(1),
                };
                // Deals go different distances: lead, qualify or visit
                for to in ["qualify", "visit"].iter().take(i % 3) {
                    let (s, m) = call(
                        &client,
                        Method::POST,
                        format!("{base}/v1/deals/{}/transitions", w.deal),
                        Some(json!({"to": to})),
                    )
                    .await;
                    assert_eq!(s, StatusCode::OK, "{m}");
                    if !began.load(Ordering::SeqCst) {
                        w.before_backup = m["version"].as_u64();
                    }
                }
                written.push(w);
                acked.fetch_add(1, Ordering::SeqCst);
            }
            written
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while acked.load(Ordering::SeqCst) < 120 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // When an admin backs up with the CLI while they write
    let backup = work.path().join("backup");
    began.store(true, Ordering::SeqCst);
    let run = {
        let (base, backup) = (base.clone(), backup.clone());
        tokio::task::spawn_blocking(move || {
            run_cli(
                &[OsStr::new("backup"), OsStr::new("--to"), backup.as_os_str()],
                &[("DEALFLOW_URL", &base), ("DEALFLOW_TOKEN", ADMIN)],
            )
        })
        .await
        .expect("cli")
    };
    let after_backup = acked.load(Ordering::SeqCst);
    while acked.load(Ordering::SeqCst) < after_backup + 12 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.expect("writer"));
    }

    // Then it succeeded, showed its progress and described itself
    assert!(run.ok, "backup failed: {} {}", run.stdout, run.stderr);
    assert!(run.stderr.contains("backup: done:"), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("report");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    assert_eq!(report["manifest"], manifest);
    assert_eq!(manifest["format"], "dealflow-backup");
    assert!(manifest["schema"].as_u64().unwrap() >= 5, "{manifest}");
    assert!(manifest["keys"].as_u64().unwrap() > 0, "{manifest}");
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);

    // And restoring it into the data dir the running server holds is refused
    let live = run_cli(
        &[
            OsStr::new("restore"),
            backup.as_os_str(),
            OsStr::new("--data-dir"),
            dir.path().as_os_str(),
        ],
        &[],
    );
    assert!(!live.ok, "restored over a live data dir: {}", live.stderr);
    assert!(
        live.stderr.contains("in use by a running server"),
        "{}",
        live.stderr
    );

    // When the server is killed, and the backup restored into a new data dir
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    let restored = work.path().join("restored");
    let run = run_cli(
        &[
            OsStr::new("restore"),
            backup.as_os_str(),
            OsStr::new("--data-dir"),
            restored.as_os_str(),
        ],
        &[],
    );
    assert!(run.ok, "restore failed: {}", run.stderr);
    assert!(run.stderr.contains("restore: done:"), "{}", run.stderr);
    let mut server = start(&restored);
    let base = server.base.clone();

    // Then every write acknowledged before the backup began is there
    let deals = list_all(&client, &base, "/v1/deals?branch=sh").await;
    let by_id: BTreeMap<&str, &Value> = deals
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d))
        .collect();
    let customers = ids_of(&list_all(&client, &base, "/v1/customers?branch=sh").await);
    let mut before = 0;
    for w in &written {
        let Some(version) = w.before_backup else {
            continue;
        };
        before += 1;
        let d = by_id
            .get(w.deal.as_str())
            .unwrap_or_else(|| panic!("deal {} acknowledged before the backup is lost", w.deal));
        assert!(
            d["version"].as_u64().unwrap() >= version,
            "deal {} lost a move acknowledged before the backup: {d}",
            w.deal
        );
        assert!(
            customers.contains(&w.customer),
            "customer {} lost",
            w.customer
        );
    }
    assert!(
        before >= 120,
        "only {before} deals were written before the backup"
    );

    // And nothing is torn: each deal has one history entry per version and
    // is listed under its owner and its stage, and nowhere else
    for d in &deals {
        let id = d["id"].as_str().unwrap();
        let (s, h) = call(
            &client,
            Method::GET,
            format!("{base}/v1/deals/{id}/history"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{h}");
        assert_eq!(
            h["items"].as_array().unwrap().len() as u64,
            d["version"].as_u64().unwrap(),
            "history of {id} torn from the deal: {d} {h}"
        );
    }
    let with = |field: &str, value: &str| -> BTreeSet<String> {
        ids_of(
            &deals
                .iter()
                .filter(|d| d[field] == value)
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    for (field, value) in [
        ("owner", "li"),
        ("owner", "zhao"),
        ("stage", "lead"),
        ("stage", "qualify"),
        ("stage", "visit"),
    ] {
        let path = format!("/v1/deals?branch=sh&{field}={value}");
        let listed = ids_of(&list_all(&client, &base, &path).await);
        assert_eq!(listed, with(field, value), "{field} index of {value} torn");
    }

    // And the restored server writes on without reusing an id
    let (s, c) = call(
        &client,
        Method::POST,
        format!("{base}/v1/customers"),
        Some(json!({"name": "after", "branch": "sh", "owner": "li",
                    "segment": "enterprise", "source": "self_developed"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert!(
        !customers.contains(c["id"].as_str().unwrap()),
        "id reused: {c}"
    );
    server.child.kill().expect("stop");
    let _ = server.child.wait();
}

#[tokio::test]
async fn a_restore_refuses_a_data_dir_with_data_and_a_damaged_or_unfinished_backup() {
    // Given a backup of a server with a branch
    let app = dealflow_tests::TestApp::new().await;
    app.branch("sh").await;
    let work = tempfile::tempdir().expect("tempdir");
    let backup = work.path().join("backup");
    let r = app
        .post(
            "/v1/admin/backup",
            ADMIN,
            json!({"to": backup.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let restore = |from: &std::path::Path, into: &std::path::Path| {
        run_cli(
            &[
                OsStr::new("restore"),
                from.as_os_str(),
                OsStr::new("--data-dir"),
                into.as_os_str(),
            ],
            &[],
        )
    };

    // When it is restored into a directory that already holds files
    let taken = work.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let run = restore(&backup, &taken);
    // Then it is refused, saying why, and the files are left alone
    assert!(!run.ok);
    assert!(run.stderr.contains("already holds data"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);

    // When its data file is damaged (one byte changed)
    let data = backup.join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let target = work.path().join("new");
    let run = restore(&backup, &target);
    // Then it is refused before anything is written
    assert!(!run.ok);
    assert!(run.stderr.contains("damaged"), "{}", run.stderr);
    assert!(!target.exists(), "a damaged backup left a data dir behind");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");

    // When a directory without a manifest is given (an unfinished backup)
    std::fs::remove_file(backup.join("manifest.json")).unwrap();
    let run = restore(&backup, &target);
    // Then it is refused as not a backup
    assert!(!run.ok);
    assert!(run.stderr.contains("no manifest.json"), "{}", run.stderr);
    assert!(!target.exists());
}
