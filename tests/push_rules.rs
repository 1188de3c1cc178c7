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
