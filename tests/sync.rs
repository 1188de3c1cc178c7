//! `/sync`: initial and incremental, long-polling, invites, leaves, account data, filters.

mod common;

use common::{TestServer, assert_error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const V3: &str = "/_matrix/client/v3";

async fn sync(server: &TestServer, token: &str, query: &str) -> Value {
    let (status, body) = server.get(&format!("{V3}/sync?{query}"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn timeline_bodies(sync: &Value, room: &str) -> Vec<String> {
    sync["rooms"]["join"][room]["timeline"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A `/sync?since=…&timeout=20000` running in the background; its task yields the response body.
fn spawn_long_poll(
    server: &TestServer,
    token: &str,
    since: &str,
) -> tokio::task::JoinHandle<Value> {
    let http = server.http.clone();
    let url = format!("{}{V3}/sync?since={since}&timeout=20000", server.base);
    let token = token.to_owned();
    tokio::spawn(async move {
        http.get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent")
            .json::<Value>()
            .await
            .expect("json")
    })
}

async fn say(server: &TestServer, token: &str, room: &str, txn: &str, body: &str) {
    let (status, _) = server
        .put(
            &format!("{V3}/rooms/{room}/send/m.room.message/{txn}"),
            Some(token),
            json!({"msgtype": "m.text", "body": body}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn initial_then_incremental() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"name": "Chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    say(&server, &alice, &room, "1", "first").await;

    let initial = sync(&server, &alice, "").await;
    let joined = &initial["rooms"]["join"][&room];
    assert!(joined.is_object(), "{initial}");
    let events = joined["timeline"]["events"].as_array().expect("timeline");
    assert_eq!(events.last().expect("event")["content"]["body"], "first");
    assert_ne!(
        joined["timeline"]["limited"], true,
        "the whole room fits in 10 events"
    );
    let state_types: Vec<&str> = joined["state"]["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        state_types.is_empty(),
        "all state is in the timeline: {state_types:?}"
    );
    assert_eq!(joined["summary"]["m.joined_member_count"], 1);
    let next = initial["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();

    // Nothing new: an empty answer with timeout=0.
    let empty = sync(&server, &alice, &format!("since={next}&timeout=0")).await;
    assert!(
        empty["rooms"]["join"]
            .as_object()
            .is_none_or(|rooms| rooms.is_empty()),
        "{empty}"
    );

    say(&server, &alice, &room, "2", "second").await;
    let incremental = sync(&server, &alice, &format!("since={next}")).await;
    assert_eq!(timeline_bodies(&incremental, &room), ["second"]);
    let next = incremental["next_batch"].as_str().expect("next").to_owned();
    let again = sync(&server, &alice, &format!("since={next}&timeout=0")).await;
    assert!(timeline_bodies(&again, &room).is_empty());
}

#[tokio::test]
async fn limited_timelines_and_prev_batch() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"name": "Busy"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    let next = sync(&server, &alice, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();
    for i in 0..15 {
        say(
            &server,
            &alice,
            &room,
            &format!("m{i}"),
            &format!("message {i}"),
        )
        .await;
    }
    let filter = urlencode(r#"{"room":{"timeline":{"limit":5}}}"#);
    let update = sync(&server, &alice, &format!("since={next}&filter={filter}")).await;
    let timeline = &update["rooms"]["join"][&room]["timeline"];
    assert_eq!(timeline["limited"], true);
    assert_eq!(
        timeline_bodies(&update, &room),
        (10..15).map(|i| format!("message {i}")).collect::<Vec<_>>()
    );
    // prev_batch continues with /messages exactly where the timeline starts.
    let prev = timeline["prev_batch"].as_str().expect("prev_batch");
    let (_, page) = server
        .get(
            &format!("{V3}/rooms/{room}/messages?dir=b&limit=3&from={prev}"),
            Some(&alice),
        )
        .await;
    let bodies: Vec<&str> = page["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(bodies, ["message 9", "message 8", "message 7"]);

    // A saved filter works the same way; a broken inline one is refused.
    let (_, saved) = server
        .post(
            &format!("{V3}/user/@alice:test.local/filter"),
            Some(&alice),
            json!({"room": {"timeline": {"limit": 2}}}),
        )
        .await;
    let id = saved["filter_id"].as_str().expect("id");
    let update = sync(&server, &alice, &format!("since={next}&filter={id}")).await;
    assert_eq!(timeline_bodies(&update, &room).len(), 2);
    assert_error(
        &server
            .get(&format!("{V3}/sync?filter=%7Bbroken"), Some(&alice))
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .get(&format!("{V3}/sync?filter=12345"), Some(&alice))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .get(&format!("{V3}/sync?since=garbage"), Some(&alice))
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server.get(&format!("{V3}/sync"), None).await,
        401,
        "M_MISSING_TOKEN",
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn long_poll_wakes_when_a_message_arrives_and_times_out_empty() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
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
    let next = sync(&server, &bob, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();

    // Times out empty.
    let started = Instant::now();
    let empty = sync(&server, &bob, &format!("since={next}&timeout=300")).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "waited for the timeout"
    );
    assert!(timeline_bodies(&empty, &room).is_empty());
    assert_eq!(empty["next_batch"], next.as_str());

    // Wakes as soon as Alice speaks.
    let poll = spawn_long_poll(&server, &bob, &next);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent_at = Instant::now();
    say(&server, &alice, &room, "wake", "wake up").await;
    let woken = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("returned early")
        .expect("task");
    assert!(sent_at.elapsed() < Duration::from_secs(5));
    assert_eq!(timeline_bodies(&woken, &room), ["wake up"]);
}

#[tokio::test]
async fn invites_leaves_and_account_data() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-123").await;
    let next = sync(&server, &bob, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"name": "Secret club", "invite": [bob_id]}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();

    let update = sync(&server, &bob, &format!("since={next}")).await;
    let invite = &update["rooms"]["invite"][&room]["invite_state"]["events"];
    let types: Vec<&str> = invite
        .as_array()
        .expect("invite state")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        types.contains(&"m.room.name")
            && types.contains(&"m.room.member")
            && types.contains(&"m.room.create"),
        "{types:?}"
    );
    assert!(
        update["rooms"]["join"].get(&room).is_none(),
        "bob has not joined"
    );
    let next = update["next_batch"].as_str().expect("next").to_owned();

    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;
    let update = sync(&server, &bob, &format!("since={next}")).await;
    let joined = &update["rooms"]["join"][&room];
    assert!(
        joined["timeline"]["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{update}"
    );
    let next = update["next_batch"].as_str().expect("next").to_owned();

    server
        .put(
            &format!("{V3}/user/{bob_id}/account_data/m.direct"),
            Some(&bob),
            json!({"@alice:test.local": [room]}),
        )
        .await;
    let update = sync(&server, &bob, &format!("since={next}")).await;
    let global = update["account_data"]["events"]
        .as_array()
        .expect("account data");
    assert_eq!(global.len(), 1);
    assert_eq!(global[0]["type"], "m.direct");
    let next = update["next_batch"].as_str().expect("next").to_owned();
    let update = sync(&server, &bob, &format!("since={next}&timeout=0")).await;
    assert!(
        update["account_data"]["events"]
            .as_array()
            .is_none_or(|e| e.is_empty()),
        "delivered once"
    );

    server
        .post(
            &format!("{V3}/rooms/{room}/kick"),
            Some(&alice),
            json!({"user_id": bob_id, "reason": "bye"}),
        )
        .await;
    say(&server, &alice, &room, "after", "after bob left").await;
    let update = sync(&server, &bob, &format!("since={next}")).await;
    let left = &update["rooms"]["leave"][&room]["timeline"]["events"];
    let last = left.as_array().and_then(|e| e.last()).expect("leave event");
    assert_eq!(last["content"]["membership"], "leave");
    assert!(
        !left.to_string().contains("after bob left"),
        "nothing after the kick"
    );
}

#[tokio::test]
async fn default_push_rules() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    // `/pushrules/` wraps the ruleset in `global`; `/pushrules/global/` is the ruleset itself.
    for (path, wrapped) in [
        ("/_matrix/client/v3/pushrules/", true),
        ("/_matrix/client/v3/pushrules/global/", false),
    ] {
        let (status, body) = server.get(path, Some(&alice)).await;
        assert_eq!(status, 200, "{body}");
        let global = if wrapped { &body["global"] } else { &body };
        let ids: Vec<&str> = global["override"]
            .as_array()
            .expect("override")
            .iter()
            .filter_map(|r| r["rule_id"].as_str())
            .collect();
        assert!(
            ids.contains(&".m.rule.master") && ids.contains(&".m.rule.is_user_mention"),
            "{ids:?}"
        );
        assert!(
            global["underride"]
                .as_array()
                .is_some_and(|u| !u.is_empty())
        );
    }
    assert_error(
        &server.get("/_matrix/client/v3/pushrules/", None).await,
        401,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn shutdown_answers_pending_long_polls() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let next = sync(&server, &alice, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();
    let poll = {
        let http = server.http.clone();
        let url = format!("{}{V3}/sync?since={next}&timeout=60000", server.base);
        tokio::spawn(async move {
            http.get(url)
                .bearer_auth(alice)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop did not wait for the 60 s poll"
    );
    let status = poll.await.expect("task").expect("answered");
    assert_eq!(status, 200);
}

fn typing_users(sync: &Value, room: &str) -> Option<Vec<String>> {
    let events = sync["rooms"]["join"][room]["ephemeral"]["events"].as_array()?;
    let typing = events.iter().find(|e| e["type"] == "m.typing")?;
    Some(
        typing["content"]["user_ids"]
            .as_array()?
            .iter()
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect(),
    )
}

#[tokio::test]
async fn typing_notifications() {
    let server = TestServer::start().await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
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
    let next = sync(&server, &bob, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();

    // A long poll wakes when Alice starts typing.
    let poll = spawn_long_poll(&server, &bob, &next);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let path = format!("{V3}/rooms/{room}/typing/{alice_id}");
    assert_eq!(
        server
            .put(&path, Some(&alice), json!({"typing": true, "timeout": 400}))
            .await
            .0,
        200
    );
    let woken = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("woke")
        .expect("task");
    assert_eq!(typing_users(&woken, &room), Some(vec![alice_id.clone()]));
    let next = woken["next_batch"].as_str().expect("next").to_owned();

    // It stops by itself after the timeout, and that is reported too.
    let stopped = sync(&server, &bob, &format!("since={next}&timeout=5000")).await;
    assert_eq!(typing_users(&stopped, &room), Some(vec![]));

    // Only for oneself, only in rooms one is in.
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/typing/{bob_id}"),
                Some(&alice),
                json!({"typing": true, "timeout": 1000}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    let (_, other) = server
        .post(&format!("{V3}/createRoom"), Some(&alice), json!({}))
        .await;
    let other = other["room_id"].as_str().expect("room");
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{other}/typing/{bob_id}"),
                Some(&bob),
                json!({"typing": true, "timeout": 1000}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .put(&path, Some(&alice), json!({"typing": "yes"}))
            .await,
        400,
        "M_BAD_JSON",
    );
    // Stopping explicitly works as well.
    assert_eq!(
        server
            .put(
                &path,
                Some(&alice),
                json!({"typing": true, "timeout": 30000})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .put(&path, Some(&alice), json!({"typing": false}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn receipts_and_read_markers() {
    let server = TestServer::start().await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
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
    let (_, sent) = server
        .put(
            &format!("{V3}/rooms/{room}/send/m.room.message/r1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "read me"}),
        )
        .await;
    let event = sent["event_id"].as_str().expect("id").to_owned();
    let next = sync(&server, &alice, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();

    // Bob's public receipt reaches Alice; his private one does not.
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/receipt/m.read/{event}"),
                Some(&bob),
                json!({})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/receipt/m.read.private/{event}"),
                Some(&bob),
                json!({})
            )
            .await
            .0,
        200
    );
    let update = sync(&server, &alice, &format!("since={next}")).await;
    let ephemeral = update["rooms"]["join"][&room]["ephemeral"]["events"]
        .as_array()
        .expect("ephemeral")
        .clone();
    let receipt = ephemeral
        .iter()
        .find(|e| e["type"] == "m.receipt")
        .expect("receipt");
    assert!(
        receipt["content"][&event]["m.read"][&bob_id]["ts"].is_u64(),
        "{receipt}"
    );
    assert!(
        receipt["content"][&event].get("m.read.private").is_none(),
        "private receipts stay private"
    );
    let next = update["next_batch"].as_str().expect("next").to_owned();
    let again = sync(&server, &alice, &format!("since={next}&timeout=0")).await;
    assert!(
        again["rooms"]["join"].get(&room).is_none(),
        "delivered once: {again}"
    );

    // Bob sees his own private receipt, and a threaded receipt carries its thread.
    let bob_view = sync(&server, &bob, "").await;
    let receipts = bob_view["rooms"]["join"][&room]["ephemeral"]["events"]
        .as_array()
        .expect("ephemeral")
        .iter()
        .find(|e| e["type"] == "m.receipt")
        .cloned()
        .expect("receipt");
    assert!(
        receipts["content"][&event]["m.read.private"][&bob_id].is_object(),
        "{receipts}"
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/receipt/m.read/{event}"),
                Some(&alice),
                json!({"thread_id": "main"})
            )
            .await
            .0,
        200
    );

    // Read markers set the fully-read marker (room account data) and receipts in one call.
    let (status, _) = server
        .post(
            &format!("{V3}/rooms/{room}/read_markers"),
            Some(&bob),
            json!({"m.fully_read": event, "m.read": event}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, marker) = server
        .get(
            &format!("{V3}/user/{bob_id}/rooms/{room}/account_data/m.fully_read"),
            Some(&bob),
        )
        .await;
    assert_eq!(marker["event_id"], event.as_str());
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/receipt/m.fully_read/{event}"),
                Some(&alice),
                json!({})
            )
            .await
            .0,
        200
    );

    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/receipt/m.read/$unknown"),
                Some(&bob),
                json!({}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    let (_, private) = server
        .post(&format!("{V3}/createRoom"), Some(&alice), json!({}))
        .await;
    let private = private["room_id"].as_str().expect("room");
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{private}/receipt/m.read/{event}"),
                Some(&bob),
                json!({}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/receipt/m.bogus/{event}"),
                Some(&bob),
                json!({}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    let _ = alice_id;
}

#[tokio::test]
async fn to_device_messages_are_delivered_once_in_order() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, bob_device) = server.register("bob", "pw-bob-123").await;
    let (_, second) = server.login("bob", "pw-bob-123").await;
    let bob_second = second["access_token"].as_str().expect("token").to_owned();
    let next = sync(&server, &bob, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();

    for (txn, n) in [("t1", 1), ("t2", 2), ("t2", 2)] {
        let messages = json!({"messages": {bob_id.clone(): {bob_device.clone(): {"n": n}}}});
        assert_eq!(
            server
                .put(
                    &format!("{V3}/sendToDevice/m.test/{txn}"),
                    Some(&alice),
                    messages
                )
                .await
                .0,
            200
        );
    }
    let all = json!({"messages": {bob_id.clone(): {"*": {"n": 3}}}});
    assert_eq!(
        server
            .put(&format!("{V3}/sendToDevice/m.test/t3"), Some(&alice), all)
            .await
            .0,
        200
    );

    let update = sync(&server, &bob, &format!("since={next}")).await;
    let events = update["to_device"]["events"]
        .as_array()
        .expect("to_device")
        .clone();
    let numbers: Vec<u64> = events
        .iter()
        .filter_map(|e| e["content"]["n"].as_u64())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "in order, the retried transaction once");
    assert_eq!(events[0]["sender"], "@alice:test.local");
    assert_eq!(events[0]["type"], "m.test");
    let next = update["next_batch"].as_str().expect("next").to_owned();
    let again = sync(&server, &bob, &format!("since={next}&timeout=0")).await;
    assert!(
        again["to_device"]["events"]
            .as_array()
            .is_none_or(|e| e.is_empty()),
        "never twice: {again}"
    );

    // The other device got the `*` message only.
    let other = sync(&server, &bob_second, "").await;
    let numbers: Vec<u64> = other["to_device"]["events"]
        .as_array()
        .expect("to_device")
        .iter()
        .filter_map(|e| e["content"]["n"].as_u64())
        .collect();
    assert_eq!(numbers, [3]);
    assert_error(
        &server
            .put(
                &format!("{V3}/sendToDevice/m.test/t9"),
                Some(&alice),
                json!({"messages": 5}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn ignored_users_disappear() {
    let server = TestServer::start().await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let (troll_id, troll, _) = server.register("troll", "pw-troll-1").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&bob),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    for token in [&alice, &troll] {
        server
            .post(&format!("{V3}/join/{room}"), Some(token), json!({}))
            .await;
    }
    server
        .put(
            &format!("{V3}/user/{alice_id}/account_data/m.ignored_user_list"),
            Some(&alice),
            json!({"ignored_users": {troll_id.clone(): {}}}),
        )
        .await;
    let next = sync(&server, &alice, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();
    say(&server, &troll, &room, "t1", "spam").await;
    say(&server, &bob, &room, "b1", "hello").await;
    let update = sync(&server, &alice, &format!("since={next}")).await;
    assert_eq!(timeline_bodies(&update, &room), ["hello"]);
    let (_, page) = server
        .get(
            &format!("{V3}/rooms/{room}/messages?dir=b&limit=5"),
            Some(&alice),
        )
        .await;
    assert!(!page.to_string().contains("spam"), "{page}");

    // Invites from ignored users are hidden too.
    let next = update["next_batch"].as_str().expect("next").to_owned();
    server
        .post(
            &format!("{V3}/createRoom"),
            Some(&troll),
            json!({"invite": [alice_id]}),
        )
        .await;
    let update = sync(&server, &alice, &format!("since={next}&timeout=0")).await;
    assert!(
        update["rooms"]["invite"]
            .as_object()
            .is_none_or(|rooms| rooms.is_empty()),
        "{update}"
    );
}

#[tokio::test]
async fn presence_between_people_who_share_a_room() {
    let server = TestServer::start().await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-123").await;
    let (stranger_id, stranger, _) = server.register("stranger", "pw-strange-1").await;
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
    let next = sync(&server, &bob, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();

    let status = format!("{V3}/presence/{alice_id}/status");
    assert_eq!(
        server
            .put(
                &status,
                Some(&alice),
                json!({"presence": "online", "status_msg": "working"})
            )
            .await
            .0,
        200
    );
    let update = sync(&server, &bob, &format!("since={next}")).await;
    let event = update["presence"]["events"]
        .as_array()
        .expect("presence")
        .iter()
        .find(|e| e["sender"] == alice_id.as_str())
        .cloned()
        .expect("alice");
    assert_eq!(event["content"]["presence"], "online");
    assert_eq!(event["content"]["status_msg"], "working");
    assert_eq!(event["content"]["currently_active"], true);

    let (status_code, body) = server.get(&status, Some(&bob)).await;
    assert_eq!(status_code, 200);
    assert_eq!(body["presence"], "online");
    assert_eq!(body["status_msg"], "working");
    assert_error(
        &server.get(&status, Some(&stranger)).await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .put(&status, Some(&bob), json!({"presence": "offline"}))
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .put(&status, Some(&alice), json!({"presence": "dancing"}))
            .await,
        400,
        "M_BAD_JSON",
    );
    // Syncing with set_presence=offline does not mark the user online.
    let stranger_sync = sync(&server, &stranger, "set_presence=offline").await;
    assert!(
        stranger_sync["presence"]["events"]
            .as_array()
            .is_none_or(|e| e.iter().all(|e| e["sender"] != stranger_id.as_str()))
    );
    let _ = bob_id;

    let off = TestServer::start_with(|c| c.presence.enabled = false).await;
    let (carol, carol_token, _) = off.register("carol", "pw-carol-1").await;
    off.put(
        &format!("{V3}/presence/{carol}/status"),
        Some(&carol_token),
        json!({"presence": "online"}),
    )
    .await;
    let (_, body) = off
        .get(&format!("{V3}/presence/{carol}/status"), Some(&carol_token))
        .await;
    assert_eq!(body["presence"], "offline", "presence switched off");
}

#[tokio::test]
async fn unread_counts_rise_and_reset_at_the_read_receipt() {
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

    say(&server, &alice, &room, "u1", "hello").await;
    say(&server, &alice, &room, "u2", "anyone?").await;
    let mention =
        json!({"msgtype": "m.text", "body": "bob: look", "m.mentions": {"user_ids": [bob_id]}});
    let (_, sent) = server
        .put(
            &format!("{V3}/rooms/{room}/send/m.room.message/u3"),
            Some(&alice),
            mention,
        )
        .await;
    let last = sent["event_id"].as_str().expect("id").to_owned();

    let counts = |sync: &Value| {
        let unread = &sync["rooms"]["join"][&room]["unread_notifications"];
        (
            unread["notification_count"].as_u64().unwrap_or(0),
            unread["highlight_count"].as_u64().unwrap_or(0),
        )
    };
    let initial = sync(&server, &bob, "").await;
    // Two-person rooms notify for every message (the spec's one-to-one default rule); the mention highlights.
    assert_eq!(
        counts(&initial),
        (3, 1),
        "{}",
        initial["rooms"]["join"][&room]["unread_notifications"]
    );
    // Alice's own messages do not count for her.
    let alice_view = sync(&server, &alice, "").await;
    assert_eq!(counts(&alice_view), (0, 0));

    let next = initial["next_batch"].as_str().expect("next").to_owned();
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/receipt/m.read/{last}"),
                Some(&bob),
                json!({})
            )
            .await
            .0,
        200
    );
    let after_read = sync(&server, &bob, &format!("since={next}")).await;
    assert_eq!(counts(&after_read), (0, 0));
}

/// A long poll started before `act` must return with what `act` did, well before its timeout.
async fn woken_by<F: std::future::Future<Output = ()>>(
    server: &TestServer,
    token: &str,
    since: &str,
    act: F,
) -> Value {
    let poll = spawn_long_poll(server, token, since);
    // Let the poll reach its wait before acting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    act.await;
    let started = Instant::now();
    let body = poll.await.expect("poll");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the poll ran to its timeout instead of waking: {body}"
    );
    body
}

#[tokio::test]
async fn long_polls_wake_for_everything_that_concerns_their_user() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, bob_device) = server.register("bob", "pw-bob-123").await;
    let (_, created) = server
        .post(&format!("{V3}/createRoom"), Some(&alice), json!({}))
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    let since = sync(&server, &bob, "").await["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();
    let next = |body: &Value| body["next_batch"].as_str().expect("next").to_owned();

    // An invite reaches someone who is not a member.
    let invite = woken_by(&server, &bob, &since, async {
        let path = format!("{V3}/rooms/{room}/invite");
        let status = server
            .post(&path, Some(&alice), json!({"user_id": bob_id}))
            .await
            .0;
        assert_eq!(status, 200);
    })
    .await;
    assert!(invite["rooms"]["invite"][&room].is_object(), "{invite}");
    let after_invite = next(&invite);
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;
    let joined = sync(&server, &bob, &format!("since={after_invite}")).await;
    let after_join = next(&joined);

    // Typing, a receipt and account data in the room, and a to-device message.
    let typing = woken_by(&server, &bob, &after_join, async {
        let path = format!("{V3}/rooms/{room}/typing/@alice:test.local");
        let body = json!({"typing": true, "timeout": 30000});
        assert_eq!(server.put(&path, Some(&alice), body).await.0, 200);
    })
    .await;
    assert!(
        typing_users(&typing, &room).is_some_and(|users| !users.is_empty()),
        "{typing}"
    );
    let after_typing = next(&typing);
    let (_, sent) = server
        .put(
            &format!("{V3}/rooms/{room}/send/m.room.message/w1"),
            Some(&bob),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    let event = sent["event_id"].as_str().expect("id").to_owned();
    let own = sync(&server, &bob, &format!("since={after_typing}")).await;
    let after_send = next(&own);
    let receipt = woken_by(&server, &bob, &after_send, async {
        let path = format!("{V3}/rooms/{room}/receipt/m.read/{event}");
        assert_eq!(server.post(&path, Some(&alice), json!({})).await.0, 200);
    })
    .await;
    let ephemeral = receipt["rooms"]["join"][&room]["ephemeral"]["events"].to_string();
    assert!(ephemeral.contains("m.receipt"), "{receipt}");
    let after_receipt = next(&receipt);
    let to_device = woken_by(&server, &bob, &after_receipt, async {
        let messages = json!({"messages": {bob_id.clone(): {bob_device.clone(): {"n": 1}}}});
        let path = format!("{V3}/sendToDevice/m.test/w2");
        assert_eq!(server.put(&path, Some(&alice), messages).await.0, 200);
    })
    .await;
    assert_eq!(to_device["to_device"]["events"][0]["content"]["n"], 1);
    let after_to_device = next(&to_device);
    let data = woken_by(&server, &bob, &after_to_device, async {
        let path = format!("{V3}/user/{bob_id}/account_data/m.test");
        assert_eq!(server.put(&path, Some(&bob), json!({"x": 1})).await.0, 200);
    })
    .await;
    assert_eq!(data["account_data"]["events"][0]["type"], "m.test");
    let after_data = next(&data);

    // A kick reaches the member who is no longer joined.
    let kick = woken_by(&server, &bob, &after_data, async {
        let path = format!("{V3}/rooms/{room}/kick");
        let status = server
            .post(&path, Some(&alice), json!({"user_id": bob_id}))
            .await
            .0;
        assert_eq!(status, 200);
    })
    .await;
    assert!(kick["rooms"]["leave"][&room].is_object(), "{kick}");
    let after_kick = next(&kick);

    // Activity in a room bob left does not end his poll: it times out with the same token.
    say(&server, &alice, &room, "w3", "bob is gone").await;
    let quiet = sync(&server, &bob, &format!("since={after_kick}&timeout=300")).await;
    assert_eq!(quiet["next_batch"], after_kick.as_str(), "{quiet}");
    assert!(
        quiet["rooms"]["join"]
            .as_object()
            .is_none_or(|j| j.is_empty())
    );
}

#[tokio::test]
async fn thread_notifications_are_counted_per_thread_when_asked() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
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
    let (_, root) = server
        .put(
            &format!("{V3}/rooms/{room}/send/m.room.message/r1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "root"}),
        )
        .await;
    let root = root["event_id"].as_str().expect("root").to_owned();
    let mut last_in_thread = String::new();
    for txn in ["r2", "r3"] {
        let (_, reply) = server
            .put(
                &format!("{V3}/rooms/{room}/send/m.room.message/{txn}"),
                Some(&alice),
                json!({"msgtype": "m.text", "body": "in thread",
                       "m.relates_to": {"rel_type": "m.thread", "event_id": root}}),
            )
            .await;
        last_in_thread = reply["event_id"].as_str().expect("id").to_owned();
    }
    let filter = urlencode(r#"{"room":{"timeline":{"unread_thread_notifications":true}}}"#);
    let threaded = sync(&server, &bob, &format!("filter={filter}")).await;
    let joined = &threaded["rooms"]["join"][&room];
    assert_eq!(joined["unread_notifications"]["notification_count"], 1);
    assert_eq!(
        joined["unread_thread_notifications"][&root]["notification_count"], 2,
        "{joined}"
    );
    // Without the flag the thread's events count in the room's total.
    let plain = sync(&server, &bob, "").await;
    assert_eq!(
        plain["rooms"]["join"][&room]["unread_notifications"]["notification_count"],
        3
    );
    // A receipt in the thread clears the thread, not the main timeline.
    let path = format!("{V3}/rooms/{room}/receipt/m.read/{last_in_thread}");
    let status = server
        .post(&path, Some(&bob), json!({"thread_id": root}))
        .await
        .0;
    assert_eq!(status, 200);
    let threaded = sync(&server, &bob, &format!("filter={filter}")).await;
    let joined = &threaded["rooms"]["join"][&room];
    assert_eq!(joined["unread_notifications"]["notification_count"], 1);
    assert!(
        joined["unread_thread_notifications"]
            .as_object()
            .is_none_or(|threads| !threads.contains_key(&root)),
        "{joined}"
    );
}

#[tokio::test]
async fn lazy_loading_event_fields_and_section_filters() {
    let server = TestServer::start().await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-123").await;
    let (carol_id, carol, _) = server.register("carol", "pw-carol-1").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    for token in [&bob, &carol] {
        server
            .post(&format!("{V3}/join/{room}"), Some(token), json!({}))
            .await;
    }
    say(&server, &carol, &room, "l1", "from carol").await;
    let path = format!("{V3}/user/{alice_id}/account_data/m.hidden");
    server.put(&path, Some(&alice), json!({"x": 1})).await;
    let path = format!("{V3}/user/{alice_id}/account_data/m.shown");
    server.put(&path, Some(&alice), json!({"x": 2})).await;

    let members_in_state = |sync: &Value| {
        let mut members: Vec<String> = sync["rooms"]["join"][&room]["state"]["events"]
            .as_array()
            .expect("state")
            .iter()
            .filter(|e| e["type"] == "m.room.member")
            .filter_map(|e| e["state_key"].as_str().map(str::to_owned))
            .collect();
        members.sort();
        members
    };
    let filter = urlencode(
        r#"{"room":{"timeline":{"limit":1},"state":{"lazy_load_members":true}},
            "account_data":{"not_types":["m.hidden"]}}"#,
    );
    let lazy = sync(&server, &alice, &format!("filter={filter}")).await;
    assert_eq!(
        members_in_state(&lazy),
        [alice_id.clone(), carol_id.clone()],
        "the sender and the user, not bob"
    );
    let data_types: Vec<&str> = lazy["account_data"]["events"]
        .as_array()
        .expect("account data")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(data_types.contains(&"m.shown") && !data_types.contains(&"m.hidden"));
    let filter = urlencode(r#"{"room":{"timeline":{"limit":1}}}"#);
    let full = sync(&server, &alice, &format!("filter={filter}")).await;
    assert!(members_in_state(&full).contains(&bob_id));

    // /messages with lazy loading returns the senders' member events in `state`.
    let filter = urlencode(r#"{"lazy_load_members":true}"#);
    let (status, page) = server
        .get(
            &format!("{V3}/rooms/{room}/messages?dir=b&limit=1&filter={filter}"),
            Some(&alice),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["state"][0]["state_key"], carol_id.as_str(), "{page}");

    // event_fields and the federation format.
    let filter =
        urlencode(r#"{"event_fields":["type","content.body"],"room":{"timeline":{"limit":1}}}"#);
    let trimmed = sync(&server, &alice, &format!("filter={filter}")).await;
    let event = &trimmed["rooms"]["join"][&room]["timeline"]["events"][0];
    assert_eq!(
        event,
        &json!({"type": "m.room.message", "content": {"body": "from carol"}})
    );
    let filter = urlencode(r#"{"event_format":"federation","room":{"timeline":{"limit":1}}}"#);
    let federation = sync(&server, &alice, &format!("filter={filter}")).await;
    let event = &federation["rooms"]["join"][&room]["timeline"]["events"][0];
    assert!(event["hashes"]["sha256"].is_string(), "{event}");
    assert!(event["signatures"].is_object() && event["depth"].is_u64());
}
