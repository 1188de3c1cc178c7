//! Push rules over HTTP: reading, the CRUD routes, bad rule ids, and that a user's own rules
//! decide their unread counts.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

#[tokio::test]
async fn push_rule_crud_and_its_effect_on_unread_counts() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let rules = format!("{V3}/pushrules/global");

    // A keyword rule that highlights, and the catch-all message rules turned off.
    let pizza = json!({"pattern": "pizza", "actions": ["notify", {"set_tweak": "highlight"}]});
    assert_eq!(
        server
            .put(&format!("{rules}/content/pizza"), Some(&bob), pizza)
            .await
            .0,
        200
    );
    for rule in [".m.rule.room_one_to_one", ".m.rule.message"] {
        let path = format!("{rules}/underride/{rule}/enabled");
        assert_eq!(
            server
                .put(&path, Some(&bob), json!({"enabled": false}))
                .await
                .0,
            200
        );
    }
    let (status, rule) = server
        .get(&format!("{rules}/content/pizza"), Some(&bob))
        .await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(rule["pattern"], "pizza");
    assert_eq!(rule["default"], false);
    let (_, enabled) = server
        .get(
            &format!("{rules}/underride/.m.rule.message/enabled"),
            Some(&bob),
        )
        .await;
    assert_eq!(enabled["enabled"], false);
    let path = format!("{rules}/content/pizza/actions");
    assert_eq!(server.put(&path, Some(&bob), json!({"actions": ["notify", {"set_tweak": "highlight"}, {"set_tweak": "sound", "value": "default"}]})).await.0, 200);
    assert_eq!(
        server.get(&path, Some(&bob)).await.1["actions"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    // The whole set shows the user's rule; Alice still has the defaults.
    let (_, all) = server.get(&format!("{V3}/pushrules/"), Some(&bob)).await;
    assert!(
        all["global"]["content"]
            .as_array()
            .expect("content")
            .iter()
            .any(|r| r["rule_id"] == "pizza")
    );
    let (_, theirs) = server.get(&format!("{V3}/pushrules/"), Some(&alice)).await;
    let content = theirs["global"]["content"].as_array();
    assert!(content.is_none_or(|rules| !rules.iter().any(|r| r["rule_id"] == "pizza")));

    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;
    for (txn, body) in [("p1", "hello"), ("p2", "pizza tonight?")] {
        let path = format!("{V3}/rooms/{room}/send/m.room.message/{txn}");
        server
            .put(
                &path,
                Some(&alice),
                json!({"msgtype": "m.text", "body": body}),
            )
            .await;
    }
    let (_, sync) = server.get(&format!("{V3}/sync"), Some(&bob)).await;
    let unread = &sync["rooms"]["join"][&room]["unread_notifications"];
    assert_eq!(
        unread["notification_count"], 1,
        "only the pizza message: {unread}"
    );
    assert_eq!(unread["highlight_count"], 1);
    // The rules reach the client as account data.
    let data = sync["account_data"]["events"]
        .as_array()
        .expect("account data");
    assert!(data.iter().any(|e| e["type"] == "m.push_rules"));

    // Bad input.
    assert_error(
        &server
            .get(&format!("{rules}/content/nosuch"), Some(&bob))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .put(
                &format!("{rules}/content/.mine"),
                Some(&bob),
                json!({"pattern": "x", "actions": []}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .put(
                &format!("{rules}/content/a%2Fb"),
                Some(&bob),
                json!({"pattern": "x", "actions": []}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .put(
                &format!("{rules}/content/other?before=nosuch"),
                Some(&bob),
                json!({"pattern": "x", "actions": []}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .delete(
                &format!("{rules}/override/.m.rule.master"),
                Some(&bob),
                serde_json::Value::Null,
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_eq!(
        server
            .delete(
                &format!("{rules}/content/pizza"),
                Some(&bob),
                serde_json::Value::Null
            )
            .await
            .0,
        200
    );
    assert_error(
        &server
            .get(&format!("{rules}/content/pizza"), Some(&bob))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server.get(&format!("{V3}/pushrules/"), None).await,
        401,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn notifications_list_what_notified_newest_first() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-123").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;
    let mut last = String::new();
    for n in 0..5 {
        let mut content = json!({"msgtype": "m.text", "body": format!("message {n}")});
        if n == 2 {
            content["m.mentions"] = json!({"user_ids": [bob_id]});
        }
        let path = format!("{V3}/rooms/{room}/send/m.room.message/n{n}");
        last = server.put(&path, Some(&alice), content).await.1["event_id"]
            .as_str()
            .expect("id")
            .to_owned();
    }
    let (status, page) = server
        .get(&format!("{V3}/notifications?limit=3"), Some(&bob))
        .await;
    assert_eq!(status, 200, "{page}");
    let bodies = |page: &serde_json::Value| -> Vec<String> {
        page["notifications"]
            .as_array()
            .expect("list")
            .iter()
            .map(|n| {
                n["event"]["content"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(bodies(&page), ["message 4", "message 3", "message 2"]);
    assert_eq!(page["notifications"][0]["room_id"], room.as_str());
    assert_eq!(page["notifications"][0]["read"], false);
    let next = page["next_token"].as_str().expect("more").to_owned();
    let (_, rest) = server
        .get(
            &format!("{V3}/notifications?limit=3&from={next}"),
            Some(&bob),
        )
        .await;
    assert_eq!(bodies(&rest), ["message 1", "message 0"]);
    assert!(rest.get("next_token").is_none());
    let (_, highlights) = server
        .get(&format!("{V3}/notifications?only=highlight"), Some(&bob))
        .await;
    assert_eq!(bodies(&highlights), ["message 2"]);
    // After a read receipt they show as read.
    server
        .post(
            &format!("{V3}/rooms/{room}/receipt/m.read/{last}"),
            Some(&bob),
            json!({}),
        )
        .await;
    let (_, page) = server
        .get(&format!("{V3}/notifications?limit=1"), Some(&bob))
        .await;
    assert_eq!(page["notifications"][0]["read"], true);
    assert_error(
        &server
            .get(&format!("{V3}/notifications?from=abc"), Some(&bob))
            .await,
        400,
        "M_INVALID_PARAM",
    );
}

/// A push gateway on loopback that records what it is sent. It fails its first request (so the
/// server must retry) and rejects the pushkey `reject-me`.
async fn start_gateway() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use axum::Json;
    use axum::http::StatusCode;
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/_matrix/push/v1/notify",
        post(move |Json(body): Json<serde_json::Value>| {
            let (recorded, calls) = (recorded.clone(), calls.clone());
            async move {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
                }
                let pushkey = body["notification"]["devices"][0]["pushkey"].clone();
                recorded.lock().expect("lock").push(body);
                if pushkey == "reject-me" {
                    return (StatusCode::OK, Json(json!({"rejected": ["reject-me"]})));
                }
                (StatusCode::OK, Json(json!({"rejected": []})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/_matrix/push/v1/notify",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn pusher(url: &str, pushkey: &str) -> serde_json::Value {
    json!({"kind": "http", "app_id": "org.example.app", "pushkey": pushkey,
           "app_display_name": "Example", "device_display_name": "Phone", "lang": "en",
           "data": {"url": url, "custom": 1}})
}

#[tokio::test]
async fn pushers_get_notifications_with_retries_and_rejected_keys_are_removed() {
    let (url, seen) = start_gateway().await;
    let server =
        TestServer::start_with(|config| config.push.allowed_networks = vec!["127.0.0.1/32".into()])
            .await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    for key in ["phone-key", "reject-me"] {
        assert_eq!(
            server
                .post(&format!("{V3}/pushers/set"), Some(&bob), pusher(&url, key))
                .await
                .0,
            200
        );
    }
    let (_, list) = server.get(&format!("{V3}/pushers"), Some(&bob)).await;
    assert_eq!(list["pushers"].as_array().map(Vec::len), Some(2), "{list}");

    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;
    let path = format!("{V3}/rooms/{room}/send/m.room.message/x1");
    let (_, sent) = server
        .put(
            &path,
            Some(&alice),
            json!({"msgtype": "m.text", "body": "wake up"}),
        )
        .await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let delivered = loop {
        let got = seen.lock().expect("lock").clone();
        if got
            .iter()
            .filter(|n| n["notification"]["event_id"] == sent["event_id"])
            .count()
            == 2
        {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {got:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let to_phone = delivered
        .iter()
        .find(|n| n["notification"]["devices"][0]["pushkey"] == "phone-key")
        .expect("phone notified");
    let notification = &to_phone["notification"];
    assert_eq!(notification["room_id"], room.as_str());
    assert_eq!(notification["content"]["body"], "wake up");
    assert_eq!(notification["counts"]["unread"], 1);
    assert_eq!(
        notification["devices"][0]["data"],
        json!({"custom": 1}),
        "the url is not sent"
    );
    // The rejected pushkey's pusher is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, list) = server.get(&format!("{V3}/pushers"), Some(&bob)).await;
        if list["pushers"].as_array().map(Vec::len) == Some(1) {
            assert_eq!(list["pushers"][0]["pushkey"], "phone-key");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Deleting with `kind: null`; a bad url is refused.
    let delete = json!({"kind": null, "app_id": "org.example.app", "pushkey": "phone-key"});
    assert_eq!(
        server
            .post(&format!("{V3}/pushers/set"), Some(&bob), delete)
            .await
            .0,
        200
    );
    assert_eq!(
        server.get(&format!("{V3}/pushers"), Some(&bob)).await.1["pushers"],
        json!([])
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/pushers/set"),
                Some(&bob),
                pusher("ftp://x/y", "k"),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server.get(&format!("{V3}/pushers"), None).await,
        401,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn push_gateways_on_private_addresses_are_not_contacted_by_default() {
    let (url, seen) = start_gateway().await;
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    server
        .post(
            &format!("{V3}/pushers/set"),
            Some(&bob),
            pusher(&url, "phone-key"),
        )
        .await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;
    let path = format!("{V3}/rooms/{room}/send/m.room.message/x1");
    server
        .put(
            &path,
            Some(&alice),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        seen.lock().expect("lock").is_empty(),
        "a loopback gateway was contacted"
    );
}
