//! Rooms and events: creation, membership, messages, state, moderation by power levels,
//! redaction, history, and the DAG under concurrent senders.

mod common;

use common::{TestServer, assert_error};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

struct User {
    id: String,
    token: String,
}

async fn user(server: &TestServer, name: &str) -> User {
    let (id, token, _) = server.register(name, &format!("pw-{name}-123")).await;
    User { id, token }
}

async fn create_room(server: &TestServer, creator: &User, body: Value) -> String {
    let (status, response) = server
        .post(&format!("{V3}/createRoom"), Some(&creator.token), body)
        .await;
    assert_eq!(status, 200, "createRoom: {response}");
    response["room_id"].as_str().expect("room_id").to_owned()
}

async fn send_text(
    server: &TestServer,
    user: &User,
    room: &str,
    txn: &str,
    body: &str,
) -> (reqwest::StatusCode, Value) {
    server
        .put(
            &format!("{V3}/rooms/{room}/send/m.room.message/{txn}"),
            Some(&user.token),
            json!({"msgtype": "m.text", "body": body}),
        )
        .await
}

async fn state(
    server: &TestServer,
    user: &User,
    room: &str,
    kind: &str,
    key: &str,
) -> (reqwest::StatusCode, Value) {
    server
        .get(
            &format!("{V3}/rooms/{room}/state/{kind}/{key}"),
            Some(&user.token),
        )
        .await
}

async fn messages(
    server: &TestServer,
    user: &User,
    room: &str,
    query: &str,
) -> (reqwest::StatusCode, Value) {
    server
        .get(
            &format!("{V3}/rooms/{room}/messages?{query}"),
            Some(&user.token),
        )
        .await
}

fn bodies(chunk: &Value) -> Vec<String> {
    chunk["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn create_room_versions_and_presets() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    for version in ["10", "11", "12"] {
        let room = create_room(
            &server,
            &alice,
            json!({"room_version": version, "name": format!("v{version}")}),
        )
        .await;
        let (status, create) = state(&server, &alice, &room, "m.room.create", "").await;
        assert_eq!(status, 200);
        assert_eq!(create["room_version"], version);
        if version == "12" {
            assert!(
                !room.contains(':'),
                "v12 room ids are the create event's hash: {room}"
            );
        } else {
            assert!(room.ends_with(":test.local"), "{room}");
        }
        if version == "10" {
            assert_eq!(
                create["creator"],
                alice.id.as_str(),
                "v11 dropped `creator`"
            );
        }
        let (_, name) = state(&server, &alice, &room, "m.room.name", "").await;
        assert_eq!(name["name"], format!("v{version}"));
        // The empty state key may be written with or without the trailing slash.
        let (status, _) = server
            .get(
                &format!("{V3}/rooms/{room}/state/m.room.name"),
                Some(&alice.token),
            )
            .await;
        assert_eq!(status, 200);
    }
    // Default version is 12.
    let room = create_room(&server, &alice, json!({})).await;
    let (_, create) = state(&server, &alice, &room, "m.room.create", "").await;
    assert_eq!(create["room_version"], "12");

    let (_, rules) = state(&server, &alice, &room, "m.room.join_rules", "").await;
    assert_eq!(rules["join_rule"], "invite");
    let public = create_room(
        &server,
        &alice,
        json!({"preset": "public_chat", "topic": "All welcome"}),
    )
    .await;
    let (_, rules) = state(&server, &alice, &public, "m.room.join_rules", "").await;
    assert_eq!(rules["join_rule"], "public");
    let (_, topic) = state(&server, &alice, &public, "m.room.topic", "").await;
    assert_eq!(topic["topic"], "All welcome");
    let (_, visibility) = state(&server, &alice, &public, "m.room.history_visibility", "").await;
    assert_eq!(visibility["history_visibility"], "shared");

    assert_error(
        &server
            .post(
                &format!("{V3}/createRoom"),
                Some(&alice.token),
                json!({"room_version": "9"}),
            )
            .await,
        400,
        "M_UNSUPPORTED_ROOM_VERSION",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/createRoom"),
                Some(&alice.token),
                json!({"room_version": "banana"}),
            )
            .await,
        400,
        "M_UNSUPPORTED_ROOM_VERSION",
    );
    assert_error(
        &server
            .post(&format!("{V3}/createRoom"), None, json!({}))
            .await,
        401,
        "M_MISSING_TOKEN",
    );
    let bad_power = json!({"power_level_content_override": {"ban": "fifty"}});
    assert_error(
        &server
            .post(&format!("{V3}/createRoom"), Some(&alice.token), bad_power)
            .await,
        400,
        "M_BAD_JSON",
    );
    let bad_state = json!({"initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": 5}}]});
    assert_error(
        &server
            .post(&format!("{V3}/createRoom"), Some(&alice.token), bad_state)
            .await,
        400,
        "M_BAD_JSON",
    );
    let (_, joined) = server
        .get(&format!("{V3}/joined_rooms"), Some(&alice.token))
        .await;
    assert_eq!(
        joined["joined_rooms"].as_array().expect("list").len(),
        5,
        "failed creations leave no rooms"
    );
}

#[tokio::test]
async fn direct_chat_with_invite_and_initial_state() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let room = create_room(
        &server,
        &alice,
        json!({
            "preset": "trusted_private_chat", "is_direct": true, "invite": [bob.id],
            "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        }),
    )
    .await;
    let (_, member) = state(&server, &alice, &room, "m.room.member", &bob.id).await;
    assert_eq!(member["membership"], "invite");
    assert_eq!(member["is_direct"], true);
    let (_, encryption) = state(&server, &alice, &room, "m.room.encryption", "").await;
    assert_eq!(encryption["algorithm"], "m.megolm.v1.aes-sha2");
    // v12 trusted private chats make invitees additional creators.
    let (_, create) = state(&server, &alice, &room, "m.room.create", "").await;
    assert_eq!(create["additional_creators"], json!([bob.id]));

    let (status, _) = server
        .post(
            &format!("{V3}/rooms/{room}/join"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, joined) = server
        .get(&format!("{V3}/joined_rooms"), Some(&bob.token))
        .await;
    assert_eq!(joined["joined_rooms"], json!([room]));
    let (status, members) = server
        .get(
            &format!("{V3}/rooms/{room}/joined_members"),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(members["joined"].as_object().expect("map").len(), 2);

    assert_error(
        &server
            .post(
                &format!("{V3}/createRoom"),
                Some(&alice.token),
                json!({"invite": ["@nobody:test.local"]}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn join_rules_invites_and_leaving() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let private = create_room(&server, &alice, json!({"preset": "private_chat"})).await;
    assert_error(
        &server
            .post(&format!("{V3}/join/{private}"), Some(&bob.token), json!({}))
            .await,
        403,
        "M_FORBIDDEN",
    );
    let (status, _) = server
        .post(
            &format!("{V3}/rooms/{private}/invite"),
            Some(&alice.token),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post(&format!("{V3}/join/{private}"), Some(&bob.token), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room_id"], private.as_str());
    // Joining twice is harmless.
    assert_eq!(
        server
            .post(&format!("{V3}/join/{private}"), Some(&bob.token), json!({}))
            .await
            .0,
        200
    );

    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{private}/leave"),
                Some(&bob.token),
                json!({"reason": "bye"})
            )
            .await
            .0,
        200
    );
    let (_, member) = state(&server, &alice, &private, "m.room.member", &bob.id).await;
    assert_eq!(member["membership"], "leave");
    assert_error(
        &send_text(&server, &bob, &private, "after-leave", "hi").await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{private}/forget"),
                Some(&bob.token),
                json!({})
            )
            .await
            .0,
        200
    );
    let (_, joined) = server
        .get(&format!("{V3}/joined_rooms"), Some(&bob.token))
        .await;
    assert_eq!(joined["joined_rooms"], json!([]));
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{private}/forget"),
                Some(&alice.token),
                json!({}),
            )
            .await,
        400,
        "M_UNKNOWN",
    );

    let public = create_room(&server, &alice, json!({"preset": "public_chat"})).await;
    assert_eq!(
        server
            .post(&format!("{V3}/join/{public}"), Some(&bob.token), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{public}/join"),
                Some(&bob.token),
                json!({})
            )
            .await
            .0,
        200
    );
    let (_, members) = server
        .get(
            &format!("{V3}/rooms/{public}/members?membership=join"),
            Some(&alice.token),
        )
        .await;
    assert_eq!(members["chunk"].as_array().expect("chunk").len(), 2);
    let (_, members) = server
        .get(
            &format!("{V3}/rooms/{public}/members?not_membership=join"),
            Some(&alice.token),
        )
        .await;
    assert_eq!(members["chunk"], json!([]));
}

#[tokio::test]
async fn messages_are_idempotent_and_paginate() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let room = create_room(&server, &alice, json!({})).await;
    let (status, first) = send_text(&server, &alice, &room, "txn-1", "one").await;
    assert_eq!(status, 200);
    let (_, again) = send_text(&server, &alice, &room, "txn-1", "one (retry)").await;
    assert_eq!(
        first["event_id"], again["event_id"],
        "same transaction id, same event"
    );
    for i in 2..=30 {
        send_text(
            &server,
            &alice,
            &room,
            &format!("txn-{i}"),
            &format!("message {i}"),
        )
        .await;
    }

    // Page backwards 10 at a time to the start, then forwards again with the same tokens.
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    for _ in 0..20 {
        let query = match &from {
            Some(token) => format!("dir=b&limit=10&from={token}"),
            None => "dir=b&limit=10".to_owned(),
        };
        let (status, page) = messages(&server, &alice, &room, &query).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(bodies(&page));
        match page["end"].as_str() {
            Some(end) => from = Some(end.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30, "{seen:?}");
    assert_eq!(seen.first().map(String::as_str), Some("message 30"));
    assert_eq!(seen.last().map(String::as_str), Some("one"));
    let (_, page) = messages(&server, &alice, &room, "dir=b&limit=1000").await;
    let all = page["chunk"].as_array().expect("chunk");
    assert_eq!(
        all.last().expect("create")["type"],
        "m.room.create",
        "history reaches the start"
    );

    let (_, forward) = messages(&server, &alice, &room, "dir=f&limit=5").await;
    assert_eq!(forward["chunk"][0]["type"], "m.room.create");
    let token = forward["end"].as_str().expect("end");
    let (_, next) = messages(
        &server,
        &alice,
        &room,
        &format!("dir=f&limit=5&from={token}"),
    )
    .await;
    assert_ne!(
        next["chunk"][0]["event_id"],
        forward["chunk"][4]["event_id"]
    );
    // A token is reusable: the same request gives the same page.
    let (_, same) = messages(
        &server,
        &alice,
        &room,
        &format!("dir=f&limit=5&from={token}"),
    )
    .await;
    let ids = |page: &Value| {
        page["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .map(|e| e["event_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&next), ids(&same));

    let filter = r#"{"types":["m.room.member"]}"#;
    let (_, members_only) = messages(
        &server,
        &alice,
        &room,
        &format!("dir=b&filter={}", urlencode(filter)),
    )
    .await;
    assert!(
        members_only["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .all(|e| e["type"] == "m.room.member")
    );

    assert_error(
        &messages(&server, &alice, &room, "dir=b&from=garbage").await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &messages(&server, &alice, &room, "dir=sideways").await,
        400,
        "M_INVALID_PARAM",
    );

    // The sender sees its transaction id; the event is retrievable by id.
    let event_id = first["event_id"].as_str().expect("id");
    let (status, event) = server
        .get(
            &format!("{V3}/rooms/{room}/event/{event_id}"),
            Some(&alice.token),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(event["content"]["body"], "one");
    assert_eq!(event["unsigned"]["transaction_id"], "txn-1");
    assert_error(
        &server
            .get(
                &format!("{V3}/rooms/{room}/event/$nope"),
                Some(&alice.token),
            )
            .await,
        404,
        "M_NOT_FOUND",
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
async fn history_visibility_for_outsiders_and_late_joiners() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let carol = user(&server, "carol").await;
    let room = create_room(&server, &alice, json!({"preset": "public_chat"})).await;
    send_text(&server, &alice, &room, "1", "before bob").await;
    // Outsiders can read nothing of a room that is not world-readable.
    assert_error(
        &messages(&server, &bob, &room, "dir=b").await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &state(&server, &bob, &room, "m.room.name", "").await,
        403,
        "M_FORBIDDEN",
    );

    // With `joined` visibility, a late joiner sees nothing sent before their join.
    server
        .put(
            &format!("{V3}/rooms/{room}/state/m.room.history_visibility/"),
            Some(&alice.token),
            json!({"history_visibility": "joined"}),
        )
        .await;
    send_text(&server, &alice, &room, "2", "secret").await;
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob.token), json!({}))
        .await;
    send_text(&server, &alice, &room, "3", "after bob").await;
    // "before bob" was sent under `shared` visibility, so a member sees it; "secret" was not.
    let (_, page) = messages(&server, &bob, &room, "dir=b").await;
    assert_eq!(bodies(&page), ["after bob", "before bob"]);

    // World-readable rooms can be read without joining.
    server
        .put(
            &format!("{V3}/rooms/{room}/state/m.room.history_visibility/"),
            Some(&alice.token),
            json!({"history_visibility": "world_readable"}),
        )
        .await;
    send_text(&server, &alice, &room, "4", "for everyone").await;
    let (_, page) = messages(&server, &carol, &room, "dir=b").await;
    assert_eq!(bodies(&page), ["for everyone"]);
}

#[tokio::test]
async fn moderation_by_power_levels() {
    let server = TestServer::start().await;
    let admin = user(&server, "admin").await;
    let moderator = user(&server, "moderator").await;
    let member = user(&server, "member").await;
    let troll = user(&server, "troll").await;
    let room = create_room(
        &server,
        &admin,
        json!({"preset": "public_chat", "room_version": "11", "power_level_content_override": {"users": {admin.id.clone(): 100, moderator.id.clone(): 50}}}),
    )
    .await;
    for user in [&moderator, &member, &troll] {
        assert_eq!(
            server
                .post(&format!("{V3}/join/{room}"), Some(&user.token), json!({}))
                .await
                .0,
            200
        );
    }

    // Kick: members may not, moderators may.
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/kick"),
                Some(&member.token),
                json!({"user_id": troll.id}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/kick"),
                Some(&moderator.token),
                json!({"user_id": troll.id, "reason": "spam"})
            )
            .await
            .0,
        200
    );
    let (_, kicked) = state(&server, &admin, &room, "m.room.member", &troll.id).await;
    assert_eq!(
        (kicked["membership"].as_str(), kicked["reason"].as_str()),
        (Some("leave"), Some("spam"))
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/kick"),
                Some(&moderator.token),
                json!({"user_id": troll.id}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );

    // Ban and unban.
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/ban"),
                Some(&member.token),
                json!({"user_id": troll.id}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/ban"),
                Some(&moderator.token),
                json!({"user_id": troll.id})
            )
            .await
            .0,
        200
    );
    assert_error(
        &server
            .post(&format!("{V3}/join/{room}"), Some(&troll.token), json!({}))
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/unban"),
                Some(&member.token),
                json!({"user_id": troll.id}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/unban"),
                Some(&moderator.token),
                json!({"user_id": troll.id})
            )
            .await
            .0,
        200
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/unban"),
                Some(&moderator.token),
                json!({"user_id": troll.id}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .post(&format!("{V3}/join/{room}"), Some(&troll.token), json!({}))
            .await
            .0,
        200
    );

    // A moderator cannot kick the admin.
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/kick"),
                Some(&moderator.token),
                json!({"user_id": admin.id}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );

    // Mute: a level below events_default cannot send; the admin can change that.
    let (_, mut power) = state(&server, &admin, &room, "m.room.power_levels", "").await;
    power["users"][troll.id.as_str()] = json!(-1);
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.power_levels/"),
                Some(&member.token),
                power.clone(),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.power_levels/"),
                Some(&admin.token),
                power
            )
            .await
            .0,
        200
    );
    assert_error(
        &send_text(&server, &troll, &room, "m1", "still here").await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        send_text(&server, &member, &room, "m2", "hello").await.0,
        200
    );

    // Members may not change room state above their level.
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.name/"),
                Some(&member.token),
                json!({"name": "mine"}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.name/"),
                Some(&moderator.token),
                json!({"name": "ours"})
            )
            .await
            .0,
        200
    );
    // Wrongly typed state content is refused before any auth question.
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.join_rules/"),
                Some(&admin.token),
                json!({"join_rule": ["x"]}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.power_levels/"),
                Some(&admin.token),
                json!({"users": {"@x:y": "100"}}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn redaction_strips_content_for_everyone() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let room = create_room(&server, &alice, json!({"preset": "public_chat"})).await;
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob.token), json!({}))
        .await;
    let (_, sent) = send_text(&server, &bob, &room, "r1", "regrettable").await;
    let event_id = sent["event_id"].as_str().expect("id").to_owned();
    let (_, alice_msg) = send_text(&server, &alice, &room, "r2", "mine").await;
    let alice_event = alice_msg["event_id"].as_str().expect("id").to_owned();

    // Bob may not redact Alice's message (redact level 50); he may redact his own.
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/redact/{alice_event}/x1"),
                Some(&bob.token),
                json!({}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    let (status, redaction) = server
        .put(
            &format!("{V3}/rooms/{room}/redact/{event_id}/x2"),
            Some(&bob.token),
            json!({"reason": "oops"}),
        )
        .await;
    assert_eq!(status, 200, "{redaction}");
    let (_, event) = server
        .get(
            &format!("{V3}/rooms/{room}/event/{event_id}"),
            Some(&alice.token),
        )
        .await;
    assert_eq!(event["content"], json!({}), "{event}");
    assert_eq!(
        event["unsigned"]["redacted_because"]["event_id"],
        redaction["event_id"]
    );
    // The admin may redact anyone's message.
    assert_eq!(
        server
            .put(
                &format!("{V3}/rooms/{room}/redact/{alice_event}/x3"),
                Some(&alice.token),
                json!({})
            )
            .await
            .0,
        200
    );
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/redact/$unknown/x4"),
                Some(&alice.token),
                json!({}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn bad_input() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let room = create_room(&server, &alice, json!({})).await;
    // History endpoints refuse people who were never in the room.
    let (_, sent) = send_text(&server, &alice, &room, "secret", "private").await;
    let event_id = sent["event_id"].as_str().expect("id").to_owned();
    for path in [
        format!("{V3}/rooms/{room}/messages?dir=b"),
        format!("{V3}/rooms/{room}/context/{event_id}"),
        format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event?ts=0&dir=f"),
    ] {
        assert_error(
            &server.get(&path, Some(&bob.token)).await,
            403,
            "M_FORBIDDEN",
        );
    }
    assert_error(
        &server
            .get(
                &format!("{V3}/rooms/{room}/event/{event_id}"),
                Some(&bob.token),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &send_text(&server, &alice, "!unknown:test.local", "1", "x").await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &send_text(&server, &bob, &room, "1", "x").await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &send_text(&server, &alice, "not-a-room-id", "1", "x").await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .get(&format!("{V3}/rooms/{room}/messages?dir=b"), None)
            .await,
        401,
        "M_MISSING_TOKEN",
    );
    assert_error(
        &state(&server, &alice, &room, "m.room.topic", "").await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/!nowhere:test.local/join"),
                Some(&bob.token),
                json!({}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    let huge = "x".repeat(70_000);
    assert_error(
        &send_text(&server, &alice, &room, "big", &huge).await,
        413,
        "M_TOO_LARGE",
    );
    assert_error(
        &server
            .raw(
                reqwest::Method::PUT,
                &format!("{V3}/rooms/{room}/send/m.room.message/nj"),
                Some(&alice.token),
                b"{".to_vec(),
            )
            .await,
        400,
        "M_NOT_JSON",
    );
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/send/m.room.message/arr"),
                Some(&alice.token),
                json!([1]),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/invite"),
                Some(&alice.token),
                json!({"user_id": "@ghost:test.local"}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/invite"),
                Some(&alice.token),
                json!({"user_id": "not a user"}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn concurrent_senders_keep_a_linear_consistent_dag() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let room = create_room(&server, &alice, json!({"preset": "public_chat"})).await;
    let mut senders = Vec::new();
    for i in 0..16 {
        let sender = user(&server, &format!("sender{i}")).await;
        server
            .post(&format!("{V3}/join/{room}"), Some(&sender.token), json!({}))
            .await;
        senders.push(sender);
    }
    let sends = senders.iter().enumerate().flat_map(|(i, sender)| {
        let server = &server;
        let room = &room;
        (0..10).map(move |n| async move {
            send_text(server, sender, room, &format!("c{n}"), &format!("{i}-{n}")).await
        })
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "every send succeeded"
    );

    let (_, page) = messages(&server, &alice, &room, "dir=f&limit=1000").await;
    let events = page["chunk"].as_array().expect("chunk");
    assert_eq!(bodies(&page).len(), 160, "no event lost");
    // Every event's single prev_event is the event before it, and depth rises by one.
    let services = &server.server.as_ref().expect("running").services;
    let mut previous: Option<(String, u64)> = None;
    for event in events {
        let id = event["event_id"].as_str().expect("id");
        let pdu = services
            .rooms
            .pdu(&ruma::OwnedEventId::try_from(id).expect("event id"))
            .expect("read")
            .expect("stored");
        let depth = pdu.json["depth"]
            .as_integer()
            .map(|d| u64::try_from(i64::from(d)).expect("positive"))
            .expect("depth");
        let prev: Vec<String> = match &pdu.json["prev_events"] {
            ruma::CanonicalJsonValue::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            other => panic!("prev_events: {other:?}"),
        };
        if let Some((previous_id, previous_depth)) = &previous {
            assert_eq!(prev, std::slice::from_ref(previous_id));
            assert_eq!(depth, previous_depth + 1);
        } else {
            assert!(prev.is_empty(), "the create event has no prev_events");
        }
        previous = Some((id.to_owned(), depth));
    }
}

#[tokio::test]
async fn context_and_timestamp_lookup() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let room = create_room(&server, &alice, json!({})).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let (_, sent) = send_text(&server, &alice, &room, &format!("c{i}"), &format!("m{i}")).await;
        ids.push(sent["event_id"].as_str().expect("id").to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (status, context) = server
        .get(
            &format!("{V3}/rooms/{room}/context/{}?limit=4", ids[5]),
            Some(&alice.token),
        )
        .await;
    assert_eq!(status, 200, "{context}");
    assert_eq!(context["event"]["content"]["body"], "m5");
    let before: Vec<&str> = context["events_before"]
        .as_array()
        .expect("before")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    let after: Vec<&str> = context["events_after"]
        .as_array()
        .expect("after")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(before, ["m4", "m3"]);
    assert_eq!(after, ["m6", "m7"]);
    assert!(
        context["state"]
            .as_array()
            .expect("state")
            .iter()
            .any(|e| e["type"] == "m.room.create")
    );
    // Its tokens work with /messages.
    let end = context["end"].as_str().expect("end");
    let (_, next) = messages(&server, &alice, &room, &format!("dir=f&limit=1&from={end}")).await;
    assert_eq!(bodies(&next), ["m8"]);
    assert_error(
        &server
            .get(
                &format!("{V3}/rooms/{room}/context/$missing"),
                Some(&alice.token),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );

    let (_, event) = server
        .get(
            &format!("{V3}/rooms/{room}/event/{}", ids[3]),
            Some(&alice.token),
        )
        .await;
    let ts = event["origin_server_ts"].as_u64().expect("ts");
    let lookup = format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event");
    let (status, found) = server
        .get(&format!("{lookup}?ts={ts}&dir=f"), Some(&alice.token))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["event_id"], ids[3].as_str());
    let (_, found) = server
        .get(&format!("{lookup}?ts={}&dir=b", ts + 1), Some(&alice.token))
        .await;
    assert_eq!(found["event_id"], ids[3].as_str());
    assert_error(
        &server
            .get(&format!("{lookup}?ts=1&dir=b"), Some(&alice.token))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .get(&format!("{lookup}?ts=abc&dir=f"), Some(&alice.token))
            .await,
        400,
        "M_INVALID_PARAM",
    );
}

#[tokio::test]
async fn knocking() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let room = create_room(&server, &alice, json!({"initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]})).await;
    let (status, body) = server
        .post(
            &format!("{V3}/knock/{room}"),
            Some(&bob.token),
            json!({"reason": "let me in"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room_id"], room.as_str());
    let (_, member) = state(&server, &alice, &room, "m.room.member", &bob.id).await;
    assert_eq!(member["membership"], "knock");
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/invite"),
                Some(&alice.token),
                json!({"user_id": bob.id})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post(&format!("{V3}/join/{room}"), Some(&bob.token), json!({}))
            .await
            .0,
        200
    );

    // Rooms that are invite-only refuse knocks.
    let closed = create_room(&server, &alice, json!({})).await;
    assert_error(
        &server
            .post(&format!("{V3}/knock/{closed}"), Some(&bob.token), json!({}))
            .await,
        403,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn upgrading_a_room() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let troll = user(&server, "troll").await;
    let (_, created) = server
        .post(&format!("{V3}/createRoom"), Some(&alice.token), json!({"room_version": "10", "preset": "public_chat", "name": "Old", "topic": "t", "room_alias_name": "up"}))
        .await;
    let old = created["room_id"].as_str().expect("room").to_owned();
    server
        .post(&format!("{V3}/join/{old}"), Some(&bob.token), json!({}))
        .await;
    server
        .post(&format!("{V3}/join/{old}"), Some(&troll.token), json!({}))
        .await;
    server
        .post(
            &format!("{V3}/rooms/{old}/ban"),
            Some(&alice.token),
            json!({"user_id": troll.id}),
        )
        .await;

    let upgrade = format!("{V3}/rooms/{old}/upgrade");
    assert_error(
        &server
            .post(&upgrade, Some(&bob.token), json!({"new_version": "11"}))
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .post(&upgrade, Some(&alice.token), json!({"new_version": "4"}))
            .await,
        400,
        "M_UNSUPPORTED_ROOM_VERSION",
    );
    let (status, body) = server
        .post(&upgrade, Some(&alice.token), json!({"new_version": "12"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let new = body["replacement_room"]
        .as_str()
        .expect("replacement")
        .to_owned();

    let (_, tombstone) = state(&server, &alice, &old, "m.room.tombstone", "").await;
    assert_eq!(tombstone["replacement_room"], new.as_str());
    let (_, create) = state(&server, &alice, &new, "m.room.create", "").await;
    assert_eq!(create["room_version"], "12");
    assert_eq!(create["predecessor"]["room_id"], old.as_str());
    let (_, name) = state(&server, &alice, &new, "m.room.name", "").await;
    assert_eq!(name["name"], "Old");
    let (_, ban) = state(&server, &alice, &new, "m.room.member", &troll.id).await;
    assert_eq!(ban["membership"], "ban");
    let (_, resolved) = server
        .get(&format!("{V3}/directory/room/%23up:test.local"), None)
        .await;
    assert_eq!(resolved["room_id"], new.as_str());
    // The old room is muted for ordinary members; the new one is open to them.
    assert_error(
        &send_text(&server, &bob, &old, "late", "anyone?").await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .post(&format!("{V3}/join/{new}"), Some(&bob.token), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(send_text(&server, &bob, &new, "hello", "here").await.0, 200);
    assert_error(
        &server
            .post(&format!("{V3}/join/{new}"), Some(&troll.token), json!({}))
            .await,
        403,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn racing_retries_of_one_transaction_make_one_event() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let room = create_room(&server, &alice, json!({})).await;
    let sends = (0..8).map(|_| send_text(&server, &alice, &room, "same-txn", "once"));
    let results = futures_util::future::join_all(sends).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(_, body)| body["event_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    let (_, page) = messages(&server, &alice, &room, "dir=b&limit=50").await;
    assert_eq!(bodies(&page), ["once"]);
}

#[tokio::test]
async fn deactivated_users_leave_their_rooms() {
    let server = TestServer::start().await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let room = create_room(&server, &alice, json!({"preset": "public_chat"})).await;
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob.token), json!({}))
        .await;
    let invited = create_room(&server, &alice, json!({"invite": [bob.id]})).await;
    let auth = json!({"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "pw-bob-123"}});
    assert_eq!(
        server
            .post(&format!("{V3}/account/deactivate"), Some(&bob.token), auth)
            .await
            .0,
        200
    );
    for room in [&room, &invited] {
        let (_, member) = state(&server, &alice, room, "m.room.member", &bob.id).await;
        assert_eq!(member["membership"], "leave", "{room}");
    }
}

#[tokio::test]
async fn an_empty_body_counts_as_an_empty_object() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-123").await;
    let (_, bob, _) = server.register("bob", "pw-bob-1234").await;
    let (_, room) = server
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            serde_json::json!({"preset": "public_chat"}),
        )
        .await;
    let room = room["room_id"].as_str().expect("room id");
    let join = format!("/_matrix/client/v3/join/{room}");
    let (status, body) = server
        .raw(reqwest::Method::POST, &join, Some(&bob), Vec::new())
        .await;
    assert_eq!(status, 200, "{body}");
    // An endpoint that needs fields still says which are missing.
    let (status, body) = server
        .raw(
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(&bob),
            b"{".to_vec(),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &body["errcode"]),
        (400, &serde_json::json!("M_NOT_JSON"))
    );
}
