//! Profiles, the user directory, and the small endpoints every client calls on login
//! (`/voip/turnServer`, `/thirdparty/protocols`).

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

#[tokio::test]
async fn profile_changes_reach_member_events() {
    let server = TestServer::start().await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let (_, created) = server
        .post(&format!("{V3}/createRoom"), Some(&alice), json!({}))
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();

    let path = format!("{V3}/profile/{alice_id}/displayname");
    assert_eq!(
        server
            .put(&path, Some(&alice), json!({"displayname": "Alice A."}))
            .await
            .0,
        200
    );
    let avatar = format!("{V3}/profile/{alice_id}/avatar_url");
    assert_eq!(
        server
            .put(
                &avatar,
                Some(&alice),
                json!({"avatar_url": "mxc://test.local/abc"})
            )
            .await
            .0,
        200
    );
    let (status, profile) = server
        .get(&format!("{V3}/profile/{alice_id}"), Some(&bob))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        profile,
        json!({"displayname": "Alice A.", "avatar_url": "mxc://test.local/abc"})
    );
    assert_eq!(
        server.get(&path, Some(&bob)).await.1["displayname"],
        "Alice A."
    );
    // The join event in her room carries the new profile.
    let (_, member) = server
        .get(
            &format!("{V3}/rooms/{room}/state/m.room.member/{alice_id}"),
            Some(&alice),
        )
        .await;
    assert_eq!(member["displayname"], "Alice A.");
    assert_eq!(member["avatar_url"], "mxc://test.local/abc");
    assert_eq!(member["membership"], "join");

    assert_error(
        &server
            .put(&path, Some(&bob), json!({"displayname": "not yours"}))
            .await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .put(
                &avatar,
                Some(&alice),
                json!({"avatar_url": "https://x/y.png"}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .put(&path, Some(&alice), json!({"displayname": "x".repeat(300)}))
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .get(&format!("{V3}/profile/@nobody:test.local"), Some(&bob))
            .await,
        404,
        "M_NOT_FOUND",
    );
    // Clearing the name.
    server
        .put(&path, Some(&alice), json!({"displayname": null}))
        .await;
    let (_, profile) = server
        .get(&format!("{V3}/profile/{alice_id}"), Some(&bob))
        .await;
    assert!(profile.get("displayname").is_none(), "{profile}");
}

#[tokio::test]
async fn user_directory_finds_people_who_share_a_room() {
    let server = TestServer::start().await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-123").await;
    let (_, _stranger, _) = server.register("bobby", "pw-bobby-1").await;
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
    server
        .put(
            &format!("{V3}/profile/{bob_id}/displayname"),
            Some(&bob),
            json!({"displayname": "Robert Smith"}),
        )
        .await;

    let search = |term: &str, limit: u64| {
        let body = json!({"search_term": term, "limit": limit});
        let (server, alice) = (&server, &alice);
        async move {
            server
                .post(&format!("{V3}/user_directory/search"), Some(alice), body)
                .await
        }
    };
    let (status, found) = search("rob", 10).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["results"],
        json!([{"user_id": bob_id, "display_name": "Robert Smith"}])
    );
    assert_eq!(found["limited"], false);
    // By id, by a later word of the name; the stranger (no shared room) is not found.
    let (_, found) = search("bob", 10).await;
    let ids: Vec<&str> = found["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|u| u["user_id"].as_str())
        .collect();
    assert_eq!(ids, [bob_id.as_str()]);
    assert_eq!(
        search("smi", 10).await.1["results"][0]["user_id"],
        bob_id.as_str()
    );
    let (_, found) = search("", 10).await;
    assert_eq!(found["results"], json!([]));
    assert_error(
        &server
            .post(
                &format!("{V3}/user_directory/search"),
                None,
                json!({"search_term": "x"}),
            )
            .await,
        401,
        "M_MISSING_TOKEN",
    );
    let _ = alice_id;
}

#[tokio::test]
async fn user_directory_can_search_all_local_users() {
    let server =
        TestServer::start_with(|config| config.user_directory.search_all_local_users = true).await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    for name in ["bob1", "bob2", "bob3"] {
        server.register(name, "pw-bob-123").await;
    }
    let (_, found) = server
        .post(
            &format!("{V3}/user_directory/search"),
            Some(&alice),
            json!({"search_term": "bob", "limit": 2}),
        )
        .await;
    assert_eq!(found["results"].as_array().expect("results").len(), 2);
    assert_eq!(found["limited"], true);
}

#[tokio::test]
async fn turn_servers_and_third_party_protocols() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (status, turn) = server
        .get(&format!("{V3}/voip/turnServer"), Some(&alice))
        .await;
    assert_eq!((status.as_u16(), turn), (200, json!({})));
    assert_error(
        &server.get(&format!("{V3}/voip/turnServer"), None).await,
        401,
        "M_MISSING_TOKEN",
    );
    let (status, protocols) = server
        .get(&format!("{V3}/thirdparty/protocols"), Some(&alice))
        .await;
    assert_eq!((status.as_u16(), protocols), (200, json!({})));

    let server = TestServer::start_with(|config| {
        config.turn.uris = vec!["turn:turn.test.local:3478?transport=udp".into()];
        config.turn.shared_secret = "s3cret".into();
    })
    .await;
    let (alice_id, alice, _) = server.register("alice", "pw-alice-1").await;
    let (status, turn) = server
        .get(&format!("{V3}/voip/turnServer"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    let username = turn["username"].as_str().expect("username");
    assert!(username.ends_with(&format!(":{alice_id}")), "{turn}");
    assert_eq!(turn["ttl"], 86400);
    assert_eq!(turn["uris"][0], "turn:turn.test.local:3478?transport=udp");
    // The password is the TURN REST API's HMAC-SHA1 of the username.
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"s3cret").expect("key");
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(turn["password"], expected);
}

#[tokio::test]
async fn reports_of_events_rooms_and_users_are_kept_for_admins() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-123").await;
    let (_, mallory, _) = server.register("mallory", "pw-mallory1").await;
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
            Some(&bob),
            json!({"msgtype": "m.text", "body": "spam"}),
        )
        .await;
    let event = sent["event_id"].as_str().expect("event").to_owned();

    let path = format!("{V3}/rooms/{room}/report/{event}");
    assert_eq!(
        server
            .post(
                &path,
                Some(&alice),
                json!({"reason": "spam", "score": -100})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/rooms/{room}/report"),
                Some(&alice),
                json!({"reason": "a spam room"})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post(
                &format!("{V3}/users/{bob_id}/report"),
                Some(&alice),
                json!({"reason": "spammer"})
            )
            .await
            .0,
        200
    );
    // Someone who cannot see the event cannot report it (and learns nothing about it).
    let (_, private) = server
        .post(&format!("{V3}/createRoom"), Some(&bob), json!({}))
        .await;
    let private = private["room_id"].as_str().expect("room").to_owned();
    let (_, hidden) = server
        .put(
            &format!("{V3}/rooms/{private}/send/m.room.message/r2"),
            Some(&bob),
            json!({"msgtype": "m.text", "body": "x"}),
        )
        .await;
    let hidden = hidden["event_id"].as_str().expect("event").to_owned();
    let path = format!("{V3}/rooms/{private}/report/{hidden}");
    assert_error(
        &server
            .post(&path, Some(&mallory), json!({"reason": "?"}))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/users/@nobody:test.local/report"),
                Some(&alice),
                json!({"reason": "?"}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/rooms/{room}/report"),
                None,
                json!({"reason": "?"}),
            )
            .await,
        401,
        "M_MISSING_TOKEN",
    );

    let reports = server
        .server
        .as_ref()
        .expect("running")
        .services
        .reports
        .all()
        .expect("reports");
    assert_eq!(reports.len(), 3);
    assert_eq!(
        reports[0].1.event_id.as_ref().map(|e| e.as_str()),
        Some(event.as_str())
    );
    assert_eq!(reports[0].1.reason.as_deref(), Some("spam"));
    assert_eq!(
        reports[2].1.user_id.as_ref().map(|u| u.as_str()),
        Some(bob_id.as_str())
    );
}
