//! Aliases, canonical alias validation, the public room directory, and account data.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

#[tokio::test]
async fn aliases_and_joining_by_alias() {
    let server = TestServer::start().await;
    let (alice, alice_token, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob_token, _) = server.register("bob", "pw-bob-123").await;
    let (status, body) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice_token),
            json!({"preset": "public_chat", "room_alias_name": "lobby"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let room = body["room_id"].as_str().expect("room").to_owned();
    let alias = "%23lobby:test.local";

    let (status, resolved) = server
        .get(&format!("{V3}/directory/room/{alias}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        resolved,
        json!({"room_id": room, "servers": ["test.local"]})
    );
    let (_, canonical) = server
        .get(
            &format!("{V3}/rooms/{room}/state/m.room.canonical_alias/"),
            Some(&alice_token),
        )
        .await;
    assert_eq!(canonical["alias"], "#lobby:test.local");
    assert_error(
        &server
            .post(
                &format!("{V3}/createRoom"),
                Some(&alice_token),
                json!({"room_alias_name": "lobby"}),
            )
            .await,
        400,
        "M_ROOM_IN_USE",
    );

    let (status, joined) = server
        .post(&format!("{V3}/join/{alias}"), Some(&bob_token), json!({}))
        .await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["room_id"], room.as_str());
    assert_error(
        &server
            .post(
                &format!("{V3}/join/%23nowhere:test.local"),
                Some(&bob_token),
                json!({}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );

    // More aliases; listing; only the creator (or a moderator) may delete.
    assert_eq!(
        server
            .put(
                &format!("{V3}/directory/room/%23second:test.local"),
                Some(&bob_token),
                json!({"room_id": room})
            )
            .await
            .0,
        200
    );
    assert_error(
        &server
            .put(
                &format!("{V3}/directory/room/%23second:test.local"),
                Some(&alice_token),
                json!({"room_id": room}),
            )
            .await,
        409,
        "M_UNKNOWN",
    );
    assert_error(
        &server
            .put(
                &format!("{V3}/directory/room/%23x:elsewhere.org"),
                Some(&alice_token),
                json!({"room_id": room}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    let (_, listed) = server
        .get(&format!("{V3}/rooms/{room}/aliases"), Some(&bob_token))
        .await;
    let mut aliases: Vec<&str> = listed["aliases"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    aliases.sort();
    assert_eq!(aliases, ["#lobby:test.local", "#second:test.local"]);
    assert_error(
        &server
            .delete(
                &format!("{V3}/directory/room/{alias}"),
                Some(&bob_token),
                json!(null),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .delete(
                &format!("{V3}/directory/room/%23second:test.local"),
                Some(&bob_token),
                json!(null)
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .delete(
                &format!("{V3}/directory/room/{alias}"),
                Some(&alice_token),
                json!(null)
            )
            .await
            .0,
        200
    );
    assert_error(
        &server
            .get(&format!("{V3}/directory/room/{alias}"), None)
            .await,
        404,
        "M_NOT_FOUND",
    );
    let _ = alice;

    // A canonical alias must point at the room.
    let bad = json!({"alias": "#lobby:test.local"});
    assert_error(
        &server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.canonical_alias/"),
                Some(&alice_token),
                bad,
            )
            .await,
        400,
        "M_BAD_ALIAS",
    );
    server
        .put(
            &format!("{V3}/directory/room/%23third:test.local"),
            Some(&alice_token),
            json!({"room_id": room}),
        )
        .await;
    let good = json!({"alias": "#third:test.local", "alt_aliases": ["#third:test.local"]});
    assert_eq!(
        server
            .put(
                &format!("{V3}/rooms/{room}/state/m.room.canonical_alias/"),
                Some(&alice_token),
                good
            )
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn public_room_directory() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    for i in 0..5 {
        let (status, _) = server
            .post(&format!("{V3}/createRoom"), Some(&alice), json!({"visibility": "public", "preset": "public_chat", "name": format!("Room {i}"), "topic": if i == 3 { "gardening" } else { "chat" }}))
            .await;
        assert_eq!(status, 200);
    }
    let (_, private) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"name": "Hidden"}),
        )
        .await;
    let private = private["room_id"].as_str().expect("room").to_owned();

    let (status, page) = server.get(&format!("{V3}/publicRooms?limit=2"), None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["chunk"].as_array().expect("chunk").len(), 2);
    assert_eq!(page["total_room_count_estimate"], 5);
    let mut seen = 2;
    let mut next = page["next_batch"].as_str().map(str::to_owned);
    while let Some(token) = next {
        let (_, page) = server
            .get(&format!("{V3}/publicRooms?limit=2&since={token}"), None)
            .await;
        seen += page["chunk"].as_array().expect("chunk").len();
        next = page["next_batch"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 5);

    let (status, found) = server
        .post(
            &format!("{V3}/publicRooms"),
            Some(&bob),
            json!({"filter": {"generic_search_term": "GARDEN"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["chunk"].as_array().expect("chunk").len(), 1);
    assert_eq!(found["chunk"][0]["name"], "Room 3");
    // `public` is the spec's default join rule, so it may be left out.
    assert!(found["chunk"][0]["join_rule"].is_null() || found["chunk"][0]["join_rule"] == "public");
    assert_eq!(found["chunk"][0]["num_joined_members"], 1);
    assert_error(
        &server
            .post(&format!("{V3}/publicRooms"), None, json!({}))
            .await,
        401,
        "M_MISSING_TOKEN",
    );
    assert_error(
        &server
            .get(&format!("{V3}/publicRooms?since=nonsense"), None)
            .await,
        400,
        "M_INVALID_PARAM",
    );

    let visibility = format!("{V3}/directory/list/room/{private}");
    assert_eq!(
        server.get(&visibility, None).await.1,
        json!({"visibility": "private"})
    );
    assert_error(
        &server
            .put(&visibility, Some(&bob), json!({"visibility": "public"}))
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        server
            .put(&visibility, Some(&alice), json!({"visibility": "public"}))
            .await
            .0,
        200
    );
    assert_eq!(
        server.get(&visibility, None).await.1,
        json!({"visibility": "public"})
    );
    let (_, page) = server.get(&format!("{V3}/publicRooms"), None).await;
    assert_eq!(page["chunk"].as_array().expect("chunk").len(), 6);
}

#[tokio::test]
async fn account_data_global_and_per_room() {
    let server = TestServer::start().await;
    let (alice, token, _) = server.register("alice", "pw-alice-1").await;
    let (bob, bob_token, _) = server.register("bob", "pw-bob-123").await;
    let path = format!("{V3}/user/{alice}/account_data/m.direct");
    assert_error(&server.get(&path, Some(&token)).await, 404, "M_NOT_FOUND");
    let direct = json!({bob.clone(): ["!dm:test.local"]});
    assert_eq!(server.put(&path, Some(&token), direct.clone()).await.0, 200);
    assert_eq!(server.get(&path, Some(&token)).await.1, direct);
    assert_error(
        &server.get(&path, Some(&bob_token)).await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server.put(&path, Some(&bob_token), json!({})).await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server.put(&path, Some(&token), json!([1])).await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .put(
                &format!("{V3}/user/{alice}/account_data/m.fully_read"),
                Some(&token),
                json!({}),
            )
            .await,
        405,
        "M_BAD_JSON",
    );

    let (_, room) = server
        .post(&format!("{V3}/createRoom"), Some(&token), json!({}))
        .await;
    let room = room["room_id"].as_str().expect("room");
    let room_path = format!("{V3}/user/{alice}/rooms/{room}/account_data/org.example.note");
    assert_eq!(
        server
            .put(&room_path, Some(&token), json!({"text": "hi"}))
            .await
            .0,
        200
    );
    assert_eq!(
        server.get(&room_path, Some(&token)).await.1,
        json!({"text": "hi"})
    );
    assert_error(
        &server
            .get(
                &format!("{V3}/user/{alice}/rooms/not-a-room/account_data/x"),
                Some(&token),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
}

#[tokio::test]
async fn filters_are_stored_per_user() {
    let server = TestServer::start().await;
    let (alice, token, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob_token, _) = server.register("bob", "pw-bob-123").await;
    let filter = json!({"room": {"timeline": {"limit": 10, "types": ["m.room.message"]}, "state": {"lazy_load_members": true}}, "presence": {"not_types": ["*"]}});
    let (status, created) = server
        .post(&format!("{V3}/user/{alice}/filter"), Some(&token), filter)
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["filter_id"].as_str().expect("filter_id").to_owned();
    assert!(!id.contains('{'));
    let (status, stored) = server
        .get(&format!("{V3}/user/{alice}/filter/{id}"), Some(&token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored["room"]["timeline"]["limit"], 10);
    assert_eq!(
        stored["room"]["timeline"]["types"],
        json!(["m.room.message"])
    );
    assert_eq!(stored["room"]["state"]["lazy_load_members"], true);

    assert_error(
        &server
            .get(&format!("{V3}/user/{alice}/filter/{id}"), Some(&bob_token))
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/user/{alice}/filter"),
                Some(&bob_token),
                json!({}),
            )
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .get(&format!("{V3}/user/{alice}/filter/999999"), Some(&token))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/user/{alice}/filter"),
                Some(&token),
                json!({"room": {"timeline": {"limit": "ten"}}}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
}
