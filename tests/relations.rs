//! Relations over HTTP: threads, edits, reactions and references; the `/relations` and
//! `/threads` endpoints; bundled aggregations; and what redactions do to them.

mod common;

use common::{TestServer, assert_error};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";
const V1: &str = "/_matrix/client/v1";

struct Room<'a> {
    server: &'a TestServer,
    id: String,
}

impl Room<'_> {
    async fn send(&self, token: &str, txn: &str, kind: &str, content: Value) -> (u16, Value) {
        let path = format!("{V3}/rooms/{}/send/{kind}/{txn}", self.id);
        let (status, body) = self.server.put(&path, Some(token), content).await;
        (status.as_u16(), body)
    }

    async fn message(&self, token: &str, txn: &str, content: Value) -> String {
        let (status, body) = self.send(token, txn, "m.room.message", content).await;
        assert_eq!(status, 200, "{body}");
        body["event_id"].as_str().expect("id").to_owned()
    }

    async fn event(&self, token: &str, event: &str) -> Value {
        let path = format!("{V3}/rooms/{}/event/{event}", self.id);
        self.server.get(&path, Some(token)).await.1
    }
}

fn text(body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body})
}

#[tokio::test]
async fn threads_edits_reactions_and_references() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let (_, carol, _) = server.register("carol", "pw-carol-1").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = Room {
        server: &server,
        id: created["room_id"].as_str().expect("room").to_owned(),
    };
    for token in [&bob, &carol] {
        server
            .post(&format!("{V3}/join/{}", room.id), Some(token), json!({}))
            .await;
    }

    // A thread with two replies.
    let root = room.message(&alice, "t0", text("root")).await;
    for (txn, body) in [("t1", "first reply"), ("t2", "second reply")] {
        let mut content = text(body);
        content["m.relates_to"] = json!({"rel_type": "m.thread", "event_id": root});
        room.message(&bob, txn, content).await;
    }
    let served = room.event(&carol, &root).await;
    let thread = &served["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(thread["count"], 2, "{served}");
    assert_eq!(thread["latest_event"]["content"]["body"], "second reply");
    assert_eq!(thread["current_user_participated"], false);
    assert_eq!(
        room.event(&bob, &root).await["unsigned"]["m.relations"]["m.thread"]["current_user_participated"],
        true
    );
    let (_, threads) = server
        .get(&format!("{V1}/rooms/{}/threads", room.id), Some(&carol))
        .await;
    assert_eq!(threads["chunk"][0]["event_id"], root.as_str(), "{threads}");
    let (_, mine) = server
        .get(
            &format!("{V1}/rooms/{}/threads?include=participated", room.id),
            Some(&carol),
        )
        .await;
    assert_eq!(mine["chunk"], json!([]));
    let (_, mine) = server
        .get(
            &format!("{V1}/rooms/{}/threads?include=participated", room.id),
            Some(&bob),
        )
        .await;
    assert_eq!(mine["chunk"].as_array().map(Vec::len), Some(1));

    // Edits: only by the sender, with the same type; the latest one is bundled; redacting
    // it brings back the one before.
    let original = room.message(&alice, "e0", text("helo")).await;
    let edit = |body: &str| {
        let mut content = text(&format!("* {body}"));
        content["m.new_content"] = text(body);
        content["m.relates_to"] = json!({"rel_type": "m.replace", "event_id": original});
        content
    };
    room.message(&alice, "e1", edit("hello")).await;
    let second = room.message(&alice, "e2", edit("hello!")).await;
    let replaced = &room.event(&bob, &original).await["unsigned"]["m.relations"]["m.replace"];
    assert_eq!(replaced["content"]["m.new_content"]["body"], "hello!");
    let (status, body) = room
        .send(&bob, "e3", "m.room.message", edit("hijacked"))
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (403, Some("M_FORBIDDEN"))
    );
    let (status, body) = room
        .send(&alice, "e4", "m.custom", edit("other type"))
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );
    let path = format!("{V3}/rooms/{}/redact/{second}/r1", room.id);
    assert_eq!(server.put(&path, Some(&alice), json!({})).await.0, 200);
    let replaced = &room.event(&bob, &original).await["unsigned"]["m.relations"]["m.replace"];
    assert_eq!(replaced["content"]["m.new_content"]["body"], "hello");

    // Reactions: one per user, key and event; an empty key is refused; after redacting a
    // reaction the same one can be sent again.
    let react = |key: &str| json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": key}});
    let (status, first) = room.send(&bob, "a1", "m.reaction", react("👍")).await;
    assert_eq!(status, 200);
    let (status, body) = room.send(&bob, "a2", "m.reaction", react("👍")).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_DUPLICATE_ANNOTATION"))
    );
    // A retry of the same transaction is not a duplicate.
    assert_eq!(
        room.send(&bob, "a1", "m.reaction", react("👍")).await.0,
        200
    );
    assert_eq!(
        room.send(&carol, "a3", "m.reaction", react("👍")).await.0,
        200
    );
    let (status, body) = room.send(&bob, "a4", "m.reaction", react("")).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );
    let reaction = first["event_id"].as_str().expect("id").to_owned();
    let path = format!("{V3}/rooms/{}/redact/{reaction}/r2", room.id);
    server.put(&path, Some(&bob), json!({})).await;
    assert_eq!(
        room.send(&bob, "a5", "m.reaction", react("👍")).await.0,
        200
    );

    // References are bundled by id.
    let reference =
        json!({"m.relates_to": {"rel_type": "m.reference", "event_id": root}, "body": "see"});
    let (_, referenced) = room.send(&carol, "f1", "m.note", reference).await;
    let bundle = &room.event(&alice, &root).await["unsigned"]["m.relations"]["m.reference"];
    assert_eq!(bundle["chunk"][0]["event_id"], referenced["event_id"]);

    // Relations to an unknown event.
    let unknown =
        json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$nosuch", "key": "x"}});
    let (status, body) = room.send(&bob, "u1", "m.reaction", unknown).await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );
}

#[tokio::test]
async fn the_relations_endpoint_filters_and_paginates() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, outsider, _) = server.register("outsider", "pw-outsider1").await;
    let (_, created) = server
        .post(&format!("{V3}/createRoom"), Some(&alice), json!({}))
        .await;
    let room = Room {
        server: &server,
        id: created["room_id"].as_str().expect("room").to_owned(),
    };
    let root = room.message(&alice, "0", text("root")).await;
    for n in 1..=3 {
        let mut content = text(&format!("reply {n}"));
        content["m.relates_to"] = json!({"rel_type": "m.thread", "event_id": root});
        room.message(&alice, &format!("t{n}"), content).await;
    }
    let reaction =
        json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "🎉"}});
    assert_eq!(room.send(&alice, "r", "m.reaction", reaction).await.0, 200);

    let base = format!("{V1}/rooms/{}/relations/{root}", room.id);
    let bodies = |page: &Value| -> Vec<String> {
        page["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .map(|e| {
                e["content"]["body"]
                    .as_str()
                    .unwrap_or(e["type"].as_str().unwrap_or_default())
                    .to_owned()
            })
            .collect()
    };
    let (status, all) = server.get(&base, Some(&alice)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        bodies(&all),
        ["m.reaction", "reply 3", "reply 2", "reply 1"],
        "newest first"
    );
    let (_, thread) = server
        .get(&format!("{base}/m.thread?dir=f"), Some(&alice))
        .await;
    assert_eq!(bodies(&thread), ["reply 1", "reply 2", "reply 3"]);
    let (_, reactions) = server
        .get(&format!("{base}/m.annotation/m.reaction"), Some(&alice))
        .await;
    assert_eq!(bodies(&reactions), ["m.reaction"]);
    let (_, page) = server
        .get(&format!("{base}/m.thread?limit=2"), Some(&alice))
        .await;
    assert_eq!(bodies(&page), ["reply 3", "reply 2"]);
    let next = page["next_batch"].as_str().expect("next");
    let (_, rest) = server
        .get(
            &format!("{base}/m.thread?limit=2&from={next}"),
            Some(&alice),
        )
        .await;
    assert_eq!(bodies(&rest), ["reply 1"]);
    assert!(rest.get("next_batch").is_none());
    assert_error(
        &server.get(&base, Some(&outsider)).await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .get(
                &format!("{V1}/rooms/{}/relations/$nosuch", room.id),
                Some(&alice),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn space_hierarchies() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let create = |body: Value| {
        let (server, alice) = (&server, &alice);
        async move {
            let (_, created) = server
                .post(&format!("{V3}/createRoom"), Some(alice), body)
                .await;
            created["room_id"].as_str().expect("room").to_owned()
        }
    };
    let space = create(
        json!({"preset": "public_chat", "name": "Space", "creation_content": {"type": "m.space"}}),
    )
    .await;
    let lobby = create(json!({"preset": "public_chat", "name": "Lobby"})).await;
    let secret = create(json!({"preset": "private_chat", "name": "Secret"})).await;
    let sub = create(
        json!({"preset": "public_chat", "name": "Sub", "creation_content": {"type": "m.space"}}),
    )
    .await;
    let deep = create(json!({"preset": "public_chat", "name": "Deep"})).await;
    let link = |parent: String, child: String, suggested: bool| {
        let (server, alice) = (&server, &alice);
        async move {
            let path = format!("{V3}/rooms/{parent}/state/m.space.child/{child}");
            let content = json!({"via": ["test.local"], "suggested": suggested});
            assert_eq!(server.put(&path, Some(alice), content).await.0, 200);
        }
    };
    link(space.clone(), lobby.clone(), true).await;
    link(space.clone(), secret.clone(), false).await;
    link(space.clone(), sub.clone(), false).await;
    link(sub.clone(), deep.clone(), false).await;

    let names = |page: &Value| -> Vec<String> {
        page["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let base = format!("{V1}/rooms/{space}/hierarchy");
    let (status, page) = server.get(&base, Some(&bob)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        names(&page),
        ["Space", "Lobby", "Sub", "Deep"],
        "the private room is left out"
    );
    assert_eq!(page["rooms"][0]["room_type"], "m.space");
    assert_eq!(
        page["rooms"][0]["children_state"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(page["rooms"][1]["num_joined_members"], 1);
    // Alice is in the private room, so she sees it.
    assert!(names(&server.get(&base, Some(&alice)).await.1).contains(&"Secret".to_owned()));
    let (_, suggested) = server
        .get(&format!("{base}?suggested_only=true"), Some(&bob))
        .await;
    assert_eq!(names(&suggested), ["Space", "Lobby"]);
    let (_, shallow) = server.get(&format!("{base}?max_depth=1"), Some(&bob)).await;
    assert_eq!(names(&shallow), ["Space", "Lobby", "Sub"]);
    let (_, first) = server.get(&format!("{base}?limit=2"), Some(&bob)).await;
    assert_eq!(names(&first), ["Space", "Lobby"]);
    let next = first["next_batch"].as_str().expect("next");
    let (_, rest) = server
        .get(&format!("{base}?limit=2&from={next}"), Some(&bob))
        .await;
    assert_eq!(names(&rest), ["Sub", "Deep"]);
    assert_error(
        &server
            .get(&format!("{V1}/rooms/{secret}/hierarchy"), Some(&bob))
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .get(
                &format!("{V1}/rooms/!nosuch:test.local/hierarchy"),
                Some(&bob),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server.get(&format!("{base}?from=x"), Some(&bob)).await,
        400,
        "M_INVALID_PARAM",
    );
}
