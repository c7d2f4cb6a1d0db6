//! Durability over a real socket: run the real `dealflow` binary on a
//! loopback port, make acknowledged writes, SIGKILL it right after the last
//! acknowledgement, restart it on the same data directory and find every
//! acknowledged write.

use dealflow_tests::{call, http_client, start_binary as start, HttpClient};
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
