//! `/search` over HTTP: matching, ranking and recency, visibility, filters, context,
//! groupings, pagination, and bad input.

mod common;

use common::{TestServer, assert_error};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

async fn say(server: &TestServer, token: &str, room: &str, txn: &str, body: &str) {
    let path = format!("{V3}/rooms/{room}/send/m.room.message/{txn}");
    let (status, _) = server
        .put(
            &path,
            Some(token),
            json!({"msgtype": "m.text", "body": body}),
        )
        .await;
    assert_eq!(status, 200);
}

fn bodies(response: &Value) -> Vec<String> {
    response["search_categories"]["room_events"]["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| {
                    r["result"]["content"]["body"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn search_finds_words_in_rooms_the_user_can_read() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat", "name": "Coffee talk"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    let (_, other) = server
        .post(&format!("{V3}/createRoom"), Some(&alice), json!({}))
        .await;
    let private = other["room_id"].as_str().expect("room").to_owned();
    say(
        &server,
        &alice,
        &room,
        "1",
        "Let's meet at the café tomorrow, the café by the river",
    )
    .await;
    say(&server, &alice, &room, "2", "Cafe?").await;
    say(&server, &alice, &room, "3", "Nothing to see here").await;
    say(&server, &alice, &room, "4", "東京タワーに行きましょう").await;
    say(&server, &alice, &private, "5", "secret cafe plans").await;
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;

    let search = |token: &str, criteria: Value| {
        let (server, token) = (&server, token.to_owned());
        async move {
            server
                .post(
                    &format!("{V3}/search"),
                    Some(&token),
                    json!({"search_categories": {"room_events": criteria}}),
                )
                .await
        }
    };
    // Accent- and case-insensitive; ranked: the short message that is mostly the word first.
    let (status, found) = search(&bob, json!({"search_term": "CAFE"})).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        bodies(&found),
        [
            "Cafe?",
            "Let's meet at the café tomorrow, the café by the river"
        ]
    );
    assert_eq!(found["search_categories"]["room_events"]["count"], 2);
    assert_eq!(
        found["search_categories"]["room_events"]["highlights"],
        json!(["cafe"])
    );
    // Bob is not in the private room: its message is not found. Alice finds it.
    let (_, mine) = search(&alice, json!({"search_term": "cafe", "order_by": "recent"})).await;
    assert_eq!(bodies(&mine)[0], "secret cafe plans");
    // Every word must match; other scripts work.
    assert_eq!(
        bodies(&search(&bob, json!({"search_term": "cafe river"})).await.1).len(),
        1
    );
    assert_eq!(
        bodies(&search(&bob, json!({"search_term": "東京"})).await.1),
        ["東京タワーに行きましょう"]
    );
    // Room names are searchable with keys; the room filter restricts.
    let (_, named) = search(
        &bob,
        json!({"search_term": "talk", "keys": ["content.name"]}),
    )
    .await;
    assert_eq!(
        named["search_categories"]["room_events"]["results"][0]["result"]["type"],
        "m.room.name"
    );
    let (_, filtered) = search(
        &alice,
        json!({"search_term": "cafe", "filter": {"rooms": [private]}}),
    )
    .await;
    assert_eq!(bodies(&filtered), ["secret cafe plans"]);

    // Context, groupings, state, pagination.
    let (_, rich) = search(
        &bob,
        json!({
            "search_term": "cafe", "order_by": "recent", "filter": {"limit": 1},
            "event_context": {"before_limit": 1, "after_limit": 1, "include_profile": true},
            "groupings": {"group_by": [{"key": "room_id"}]}, "include_state": true,
        }),
    )
    .await;
    let events = &rich["search_categories"]["room_events"];
    assert_eq!(bodies(&rich), ["Cafe?"]);
    let context = &events["results"][0]["context"];
    assert_eq!(
        context["events_before"][0]["content"]["body"],
        "Let's meet at the café tomorrow, the café by the river"
    );
    assert_eq!(
        context["events_after"][0]["content"]["body"],
        "Nothing to see here"
    );
    assert!(context["profile_info"]["@alice:test.local"].is_object());
    assert!(events["groups"]["room_id"][&room]["results"].is_array());
    assert!(
        events["state"][&room]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    let next = events["next_batch"].as_str().expect("more");
    let (_, second) = server
        .post(&format!("{V3}/search?next_batch={next}"), Some(&bob),
              json!({"search_categories": {"room_events": {"search_term": "cafe", "order_by": "recent", "filter": {"limit": 1}}}}))
        .await;
    assert_eq!(
        bodies(&second),
        ["Let's meet at the café tomorrow, the café by the river"]
    );

    // Bad input.
    assert_error(
        &search(
            &bob,
            json!({"search_term": "cafe", "order_by": "alphabetical"}),
        )
        .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/search?next_batch=zzz"),
                Some(&bob),
                json!({"search_categories": {"room_events": {"search_term": "x"}}}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/search"),
                None,
                json!({"search_categories": {}}),
            )
            .await,
        401,
        "M_MISSING_TOKEN",
    );
    // Redacted messages are not found.
    let (_, found) = search(&alice, json!({"search_term": "secret"})).await;
    let event = found["search_categories"]["room_events"]["results"][0]["result"]["event_id"]
        .as_str()
        .expect("id")
        .to_owned();
    server
        .put(
            &format!("{V3}/rooms/{private}/redact/{event}/r1"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert!(bodies(&search(&alice, json!({"search_term": "secret"})).await.1).is_empty());
}
