//! Prometheus metrics: off by default, on their own listener when enabled, and counting what
//! the server does.

mod common;

use common::TestServer;
use std::time::Duration;

async fn scrape(server: &TestServer) -> String {
    let addr = server
        .server
        .as_ref()
        .and_then(|s| s.metrics_addr)
        .expect("metrics listener");
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let server = TestServer::start().await;
    assert!(
        server
            .server
            .as_ref()
            .expect("running")
            .metrics_addr
            .is_none()
    );
    let (status, body) = server.get("/metrics", None).await;
    assert_eq!(
        (status.as_u16(), &body["errcode"]),
        (404, &serde_json::json!("M_UNRECOGNIZED"))
    );
}

#[tokio::test]
async fn requests_syncs_storage_and_memory_are_measured() {
    let server = TestServer::start_with(|c| {
        c.metrics.enabled = true;
        c.metrics.listen = "127.0.0.1:0".into();
    })
    .await;
    let addr = server
        .server
        .as_ref()
        .and_then(|s| s.metrics_addr)
        .expect("addr");
    assert!(addr.ip().is_loopback());
    let (_, token, _) = server.register("alice", "pw-alice-123").await;
    for _ in 0..3 {
        server.get("/_matrix/client/versions", None).await;
    }
    server
        .get("/_matrix/client/v3/rooms/!x:test.local/state", Some(&token))
        .await;

    // A long poll is counted while it waits.
    let (_, first) = server.get("/_matrix/client/v3/sync", Some(&token)).await;
    let since = first["next_batch"].as_str().expect("next_batch").to_owned();
    let poll = {
        let http = server.http.clone();
        let url = format!(
            "{}/_matrix/client/v3/sync?timeout=3000&since={since}",
            server.base
        );
        let token = token.clone();
        tokio::spawn(async move { http.get(url).bearer_auth(token).send().await })
    };
    let mut waiting = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiting = sample(&scrape(&server).await, "myelin_sync_requests_in_flight ");
        if waiting == Some(1.0) {
            break;
        }
    }
    assert_eq!(waiting, Some(1.0));
    poll.abort();

    let text = scrape(&server).await;
    assert_eq!(
        sample(
            &text,
            r#"myelin_http_requests_total{method="GET",endpoint="/_matrix/client/versions",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    // Ids are not labels: the route template is.
    assert!(
        text.contains(r#"endpoint="/_matrix/client/v3/rooms/{room_id}/state",status="404""#),
        "{text}"
    );
    assert!(!text.contains("!x:test.local"));
    assert_eq!(
        sample(
            &text,
            r#"myelin_http_request_duration_seconds_count{method="GET",endpoint="/_matrix/client/versions"}"#
        ),
        Some(3.0)
    );
    assert!(sample(&text, r#"myelin_rocksdb_size_bytes{cf="users"}"#).is_some_and(|b| b > 0.0));
    assert!(sample(&text, "myelin_rocksdb_block_cache_hits_total").is_some());
    assert!(sample(&text, "myelin_rocksdb_block_cache_misses_total").is_some());
    assert!(sample(&text, "myelin_process_resident_memory_bytes").is_some_and(|b| b > 1_000_000.0));
    // The client API does not serve them.
    assert_eq!(server.get("/metrics", None).await.0, 404);
}
