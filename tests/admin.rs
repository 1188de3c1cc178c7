//! The admin API (Synapse's paths and shapes): who may call it, each area's endpoints, bad
//! input, and a moderation scenario from report to deleted room.

mod common;

use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const V1: &str = "/_synapse/admin/v1";
const V2: &str = "/_synapse/admin/v2";

/// A server with server notices on, an admin (`@root`) and an ordinary user (`@alice`).
struct Setup {
    server: TestServer,
    admin: String,
    alice_id: String,
    alice: String,
}

async fn setup() -> Setup {
    let server = TestServer::start_with(|c| {
        c.server_notices.system_mxid_localpart = "notices".into();
    })
    .await;
    let (root_id, admin, _) = server.register("root", "pw-root-123").await;
    let services = &server.server.as_ref().expect("running").services;
    services
        .set_admin(&ruma::UserId::parse(&root_id).expect("id"), true)
        .expect("make admin");
    let (alice_id, alice, _) = server.register("alice", "pw-alice-123").await;
    Setup {
        server,
        admin,
        alice_id,
        alice,
    }
}

async fn create_room(server: &TestServer, token: &str, body: Value) -> String {
    let (status, room) = server
        .post("/_matrix/client/v3/createRoom", Some(token), body)
        .await;
    assert_eq!(status, 200, "{room}");
    room["room_id"].as_str().expect("room id").to_owned()
}

async fn send_text(
    server: &TestServer,
    token: &str,
    room: &str,
    text: &str,
) -> (StatusCode, Value) {
    let txn = format!("t{}", rand_suffix());
    server
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
            Some(token),
            json!({"msgtype": "m.text", "body": text}),
        )
        .await
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn join(server: &TestServer, token: &str, room: &str) -> (StatusCode, Value) {
    server
        .post(
            &format!("/_matrix/client/v3/join/{room}"),
            Some(token),
            json!({}),
        )
        .await
}

/// Every admin endpoint, with a body where it takes one.
/// The user they name is `@bob` (some of them deactivate or log out their target).
fn endpoints() -> Vec<(Method, String, Value)> {
    let user = "@bob:test.local";
    let room = "!nowhere:test.local";
    let get = |p: String| (Method::GET, p, Value::Null);
    let post = |p: String, b: Value| (Method::POST, p, b);
    let put = |p: String, b: Value| (Method::PUT, p, b);
    let delete = |p: String| (Method::DELETE, p, Value::Null);
    vec![
        get(format!("{V1}/server_version")),
        get(format!("{V2}/users")),
        get(format!("{V2}/users/{user}")),
        put(format!("{V2}/users/{user}"), json!({"displayname": "x"})),
        post(format!("{V1}/deactivate/{user}"), json!({})),
        post(
            format!("{V1}/reset_password/{user}"),
            json!({"new_password": "pw-new-1234"}),
        ),
        get(format!("{V1}/users/{user}/admin")),
        put(format!("{V1}/users/{user}/admin"), json!({"admin": true})),
        get(format!("{V1}/whois/{user}")),
        get(format!("{V2}/users/{user}/devices")),
        post(
            format!("{V2}/users/{user}/delete_devices"),
            json!({"devices": []}),
        ),
        get(format!("{V2}/users/{user}/devices/DEV")),
        put(
            format!("{V2}/users/{user}/devices/DEV"),
            json!({"display_name": "x"}),
        ),
        delete(format!("{V2}/users/{user}/devices/DEV")),
        get(format!("{V1}/users/{user}/joined_rooms")),
        get(format!("{V1}/users/{user}/media")),
        delete(format!("{V1}/users/{user}/media")),
        post(format!("{V1}/users/{user}/shadow_ban"), json!({})),
        delete(format!("{V1}/users/{user}/shadow_ban")),
        get(format!("{V1}/rooms")),
        get(format!("{V1}/rooms/{room}")),
        delete(format!("{V1}/rooms/{room}")),
        get(format!("{V1}/rooms/{room}/members")),
        get(format!("{V1}/rooms/{room}/state")),
        get(format!("{V1}/rooms/{room}/messages")),
        get(format!("{V1}/rooms/{room}/block")),
        put(format!("{V1}/rooms/{room}/block"), json!({"block": true})),
        delete(format!("{V2}/rooms/{room}")),
        get(format!("{V2}/rooms/{room}/delete_status")),
        get(format!("{V2}/rooms/delete_status/abc")),
        get(format!("{V1}/event_reports")),
        get(format!("{V1}/event_reports/1")),
        delete(format!("{V1}/event_reports/1")),
        get(format!("{V1}/room_reports")),
        get(format!("{V1}/room_reports/1")),
        delete(format!("{V1}/room_reports/1")),
        get(format!("{V1}/user_reports")),
        get(format!("{V1}/user_reports/1")),
        delete(format!("{V1}/user_reports/1")),
        delete(format!("{V1}/media/test.local/abc")),
        post(format!("{V1}/media/delete?before_ts=1"), json!({})),
        post(
            format!("{V1}/media/test.local/delete?before_ts=1"),
            json!({}),
        ),
        post(format!("{V1}/media/quarantine/test.local/abc"), json!({})),
        post(format!("{V1}/media/unquarantine/test.local/abc"), json!({})),
        post(format!("{V1}/media/protect/abc"), json!({})),
        post(format!("{V1}/media/unprotect/abc"), json!({})),
        get(format!("{V1}/room/{room}/media")),
        post(format!("{V1}/room/{room}/media/quarantine"), json!({})),
        post(format!("{V1}/quarantine_media/{room}"), json!({})),
        post(format!("{V1}/user/{user}/media/quarantine"), json!({})),
        post(format!("{V1}/purge_media_cache?before_ts=1"), json!({})),
        get(format!("{V1}/registration_tokens")),
        post(format!("{V1}/registration_tokens/new"), json!({})),
        get(format!("{V1}/registration_tokens/abc")),
        put(format!("{V1}/registration_tokens/abc"), json!({})),
        delete(format!("{V1}/registration_tokens/abc")),
        post(
            format!("{V1}/send_server_notice"),
            json!({"user_id": user, "content": {"msgtype": "m.text", "body": "hi"}}),
        ),
        put(
            format!("{V1}/send_server_notice/txn1"),
            json!({"user_id": user, "content": {"msgtype": "m.text", "body": "hi"}}),
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_is_for_admins_only() {
    let Setup {
        server,
        admin,
        alice,
        ..
    } = setup().await;
    server.register("bob", "pw-bob-1234").await;
    for (method, path, body) in endpoints() {
        let anonymous = server
            .request(method.clone(), &path, None, body.clone())
            .await;
        assert_eq!(anonymous.0, 401, "{method} {path}: {}", anonymous.1);
        assert_eq!(anonymous.1["errcode"], "M_MISSING_TOKEN", "{method} {path}");
        let user = server
            .request(method.clone(), &path, Some(&alice), body.clone())
            .await;
        assert_error(&user, 403, "M_FORBIDDEN");
        // An admin gets a real answer: success, or a Matrix error about the input (the ids in
        // this table mostly do not exist), never an auth error or an unrouted path.
        let (status, answer) = server
            .request(method.clone(), &path, Some(&admin), body)
            .await;
        assert!(
            !matches!(status.as_u16(), 401 | 403 | 405 | 500),
            "{method} {path}: {status} {answer}"
        );
        if !status.is_success() {
            assert!(answer["errcode"].is_string(), "{method} {path}: {answer}");
            assert_ne!(answer["errcode"], "M_UNRECOGNIZED", "{method} {path}");
        }
    }
    // A deactivated admin is no admin.
    let services = &server.server.as_ref().expect("running").services;
    let root = ruma::UserId::parse("@root:test.local").expect("id");
    services.deactivate(&root, false).await.expect("deactivate");
    let after = server.get(&format!("{V2}/users"), Some(&admin)).await;
    assert_eq!(after.0, 401, "{}", after.1);
}

#[tokio::test]
async fn users_are_listed_shown_created_and_changed() {
    let Setup {
        server,
        admin,
        alice_id,
        alice,
    } = setup().await;
    let (status, version) = server
        .get(&format!("{V1}/server_version"), Some(&admin))
        .await;
    assert_eq!(status, 200);
    assert!(
        version["server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("Myelin"))
    );

    // Create with PUT: 201, the display name defaults to the localpart.
    let carol = "@carol:test.local";
    let (status, created) = server
        .put(
            &format!("{V2}/users/{carol}"),
            Some(&admin),
            json!({"password": "pw-carol-123"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], carol);
    assert_eq!(created["displayname"], "carol");
    assert_eq!(created["admin"], false);
    assert_eq!(server.login("carol", "pw-carol-123").await.0, 200);

    // Modify: 200; a new password logs out the user's devices unless told otherwise.
    let (status, changed) = server
        .put(
            &format!("{V2}/users/{alice_id}"),
            Some(&admin),
            json!({"displayname": "Alice A.", "password": "pw-alice-456"}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["displayname"], "Alice A.");
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&alice))
            .await
            .0,
        401
    );
    let (status, login) = server.login("alice", "pw-alice-456").await;
    assert_eq!(status, 200);
    let alice = login["access_token"].as_str().expect("token").to_owned();
    let (status, profile) = server
        .get(&format!("/_matrix/client/v3/profile/{alice_id}"), None)
        .await;
    assert_eq!(
        (status.as_u16(), &profile["displayname"]),
        (200, &json!("Alice A."))
    );

    // Listing: total, paging with next_token, filters, ordering.
    let (status, page) = server
        .get(&format!("{V2}/users?limit=2"), Some(&admin))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 3);
    assert_eq!(page["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["next_token"], "2");
    let (_, rest) = server
        .get(&format!("{V2}/users?limit=2&from=2"), Some(&admin))
        .await;
    assert_eq!(rest["users"].as_array().map(Vec::len), Some(1));
    assert!(rest.get("next_token").is_none());
    let (_, named) = server
        .get(&format!("{V2}/users?name=alice%20a"), Some(&admin))
        .await;
    assert_eq!(named["users"][0]["name"], alice_id.as_str());
    assert_eq!(named["total"], 1);
    let (_, newest) = server
        .get(
            &format!("{V2}/users?order_by=creation_ts&dir=b"),
            Some(&admin),
        )
        .await;
    assert_eq!(newest["users"][0]["name"], carol);

    // Bad pagination and unknown orders are M_INVALID_PARAM.
    for query in [
        "limit=-1",
        "from=abc",
        "dir=x",
        "order_by=shoe_size",
        "limit=0",
    ] {
        assert_error(
            &server
                .get(&format!("{V2}/users?{query}"), Some(&admin))
                .await,
            400,
            "M_INVALID_PARAM",
        );
    }
    // Unknown and remote users.
    assert_error(
        &server
            .get(&format!("{V2}/users/@nobody:test.local"), Some(&admin))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .get(&format!("{V2}/users/@alice:elsewhere.org"), Some(&admin))
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .get(&format!("{V2}/users/not-a-user-id"), Some(&admin))
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .put(
                &format!("{V2}/users/@x:elsewhere.org"),
                Some(&admin),
                json!({}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .put(
                &format!("{V2}/users/{carol}"),
                Some(&admin),
                json!({"admin": "yes"}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .raw(
                Method::PUT,
                &format!("{V2}/users/{carol}"),
                Some(&admin),
                b"{nope".to_vec(),
            )
            .await,
        400,
        "M_NOT_JSON",
    );

    // Profiles are checked before anything is created.
    let long_name = "n".repeat(300);
    assert_error(
        &server
            .put(
                &format!("{V2}/users/@dave:test.local"),
                Some(&admin),
                json!({"displayname": long_name}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .get(&format!("{V2}/users/@dave:test.local"), Some(&admin))
            .await,
        404,
        "M_NOT_FOUND",
    );

    // Admin flag: read, set, and no demoting oneself.
    let path = format!("{V1}/users/{carol}/admin");
    assert_eq!(
        server.get(&path, Some(&admin)).await.1,
        json!({"admin": false})
    );
    assert_eq!(
        server
            .put(&path, Some(&admin), json!({"admin": true}))
            .await
            .0,
        200
    );
    assert_eq!(
        server.get(&path, Some(&admin)).await.1,
        json!({"admin": true})
    );
    assert_error(
        &server
            .put(
                &format!("{V1}/users/@root:test.local/admin"),
                Some(&admin),
                json!({"admin": false}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );

    // whois and devices.
    let (status, whois) = server
        .get(&format!("{V1}/whois/{alice_id}"), Some(&admin))
        .await;
    assert_eq!(status, 200, "{whois}");
    assert_eq!(whois["user_id"], alice_id.as_str());
    let device = whois["devices"]
        .as_object()
        .expect("devices")
        .keys()
        .next()
        .expect("one")
        .clone();
    let devices_path = format!("{V2}/users/{alice_id}/devices");
    let (_, devices) = server.get(&devices_path, Some(&admin)).await;
    assert_eq!(devices["total"], 1);
    assert_eq!(devices["devices"][0]["device_id"], device.as_str());
    let one = format!("{devices_path}/{device}");
    assert_eq!(
        server
            .put(&one, Some(&admin), json!({"display_name": "Laptop"}))
            .await
            .0,
        200
    );
    assert_eq!(
        server.get(&one, Some(&admin)).await.1["display_name"],
        "Laptop"
    );
    assert_error(
        &server
            .get(&format!("{devices_path}/NOPE"), Some(&admin))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_eq!(server.delete(&one, Some(&admin), Value::Null).await.0, 200);
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&alice))
            .await
            .0,
        401
    );
    let (_, login) = server.login("alice", "pw-alice-456").await;
    let alice = login["access_token"].as_str().expect("token").to_owned();
    let device = login["device_id"].as_str().expect("device").to_owned();
    assert_eq!(
        server
            .post(
                &format!("{V2}/users/{alice_id}/delete_devices"),
                Some(&admin),
                json!({"devices": [device]})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&alice))
            .await
            .0,
        401
    );

    // reset_password, then deactivation (with erase): no login, no profile.
    assert_eq!(
        server
            .post(
                &format!("{V1}/reset_password/{carol}"),
                Some(&admin),
                json!({"new_password": "pw-carol-789"})
            )
            .await
            .0,
        200
    );
    assert_eq!(server.login("carol", "pw-carol-123").await.0, 403);
    assert_eq!(server.login("carol", "pw-carol-789").await.0, 200);
    assert_error(
        &server
            .post(
                &format!("{V1}/reset_password/{carol}"),
                Some(&admin),
                json!({"new_password": ""}),
            )
            .await,
        400,
        "M_WEAK_PASSWORD",
    );
    let (status, body) = server
        .post(
            &format!("{V1}/deactivate/{carol}"),
            Some(&admin),
            json!({"erase": true}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &body["id_server_unbind_result"]),
        (200, &json!("success"))
    );
    assert_error(
        &server.login("carol", "pw-carol-789").await,
        403,
        "M_USER_DEACTIVATED",
    );
    let (_, shown) = server
        .get(&format!("{V2}/users/{carol}"), Some(&admin))
        .await;
    assert_eq!(
        (&shown["deactivated"], &shown["erased"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(shown["displayname"], Value::Null);
    // Deactivated users are listed only when asked for.
    let (_, listed) = server.get(&format!("{V2}/users"), Some(&admin)).await;
    assert_eq!(listed["total"], 2);
    let (_, listed) = server
        .get(&format!("{V2}/users?deactivated=true"), Some(&admin))
        .await;
    assert_eq!(listed["total"], 3);
    // Reactivation needs a password.
    assert_error(
        &server
            .put(
                &format!("{V2}/users/{carol}"),
                Some(&admin),
                json!({"deactivated": false}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    let (status, back) = server
        .put(
            &format!("{V2}/users/{carol}"),
            Some(&admin),
            json!({"deactivated": false, "password": "pw-carol-000"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &back["deactivated"]),
        (200, &json!(false))
    );
    assert_eq!(server.login("carol", "pw-carol-000").await.0, 200);
}

/// Polls a deletion's status until it is done.
async fn wait_for_deletion(server: &TestServer, admin: &str, delete_id: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = server
            .get(
                &format!("{V2}/rooms/delete_status/{delete_id}"),
                Some(admin),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        if matches!(body["status"].as_str(), Some("complete" | "failed")) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("deletion {delete_id} did not finish");
}

#[tokio::test]
async fn rooms_are_listed_inspected_blocked_and_deleted() {
    let Setup {
        server,
        admin,
        alice_id,
        alice,
    } = setup().await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-1234").await;
    let general = create_room(
        &server,
        &alice,
        json!({"name": "General", "preset": "public_chat", "room_alias_name": "general"}),
    )
    .await;
    let quiet = create_room(&server, &alice, json!({"name": "Archive"})).await;
    let unnamed = create_room(&server, &bob, json!({})).await;
    assert_eq!(join(&server, &bob, &general).await.0, 200);
    for n in 0..3 {
        assert_eq!(
            send_text(&server, &alice, &general, &format!("hello {n}"))
                .await
                .0,
            200
        );
    }

    // Listing: named rooms sort by name, unnamed last; search; sizes; paging.
    let (status, list) = server.get(&format!("{V1}/rooms"), Some(&admin)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total_rooms"], 3);
    let ids: Vec<&str> = list["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["room_id"].as_str())
        .collect();
    assert_eq!(ids, [quiet.as_str(), general.as_str(), unnamed.as_str()]);
    let (_, found) = server
        .get(&format!("{V1}/rooms?search_term=gener"), Some(&admin))
        .await;
    assert_eq!(found["total_rooms"], 1);
    let room = &found["rooms"][0];
    assert_eq!(room["name"], "General");
    assert_eq!(room["joined_members"], 2);
    assert_eq!(room["canonical_alias"], "#general:test.local");
    assert_eq!(room["join_rules"], "public");
    assert_eq!(room["creator"], alice_id.as_str());
    let (_, biggest) = server
        .get(
            &format!("{V1}/rooms?order_by=joined_members&limit=1"),
            Some(&admin),
        )
        .await;
    assert_eq!(biggest["rooms"][0]["room_id"], general.as_str());
    assert_eq!(biggest["next_batch"], 1);
    assert_error(
        &server
            .get(&format!("{V1}/rooms?order_by=colour"), Some(&admin))
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .get(&format!("{V1}/rooms?from=-3"), Some(&admin))
            .await,
        400,
        "M_INVALID_PARAM",
    );

    // One room: details, members, state, history.
    let (status, details) = server
        .get(&format!("{V1}/rooms/{general}"), Some(&admin))
        .await;
    assert_eq!(
        (status.as_u16(), &details["name"]),
        (200, &json!("General"))
    );
    let (_, members) = server
        .get(&format!("{V1}/rooms/{general}/members"), Some(&admin))
        .await;
    assert_eq!(members["total"], 2);
    let (_, state) = server
        .get(&format!("{V1}/rooms/{general}/state"), Some(&admin))
        .await;
    assert!(
        state["state"]
            .as_array()
            .expect("state")
            .iter()
            .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "General")
    );
    let (status, messages) = server
        .get(
            &format!("{V1}/rooms/{general}/messages?limit=2"),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{messages}");
    let chunk = messages["chunk"].as_array().expect("chunk");
    assert_eq!(chunk.len(), 2);
    assert_eq!(chunk[0]["content"]["body"], "hello 2");
    let end = messages["end"].as_str().expect("end");
    let (_, older) = server
        .get(
            &format!("{V1}/rooms/{general}/messages?limit=1&from={end}"),
            Some(&admin),
        )
        .await;
    assert_eq!(older["chunk"][0]["content"]["body"], "hello 0");
    assert_error(
        &server
            .get(
                &format!("{V1}/rooms/{general}/messages?dir=sideways"),
                Some(&admin),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .get(
                &format!("{V1}/rooms/{general}/messages?from=yesterday"),
                Some(&admin),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    for path in ["", "/members", "/state", "/messages"] {
        assert_error(
            &server
                .get(
                    &format!("{V1}/rooms/!missing:test.local{path}"),
                    Some(&admin),
                )
                .await,
            404,
            "M_NOT_FOUND",
        );
    }
    assert_error(
        &server
            .get(&format!("{V1}/rooms/not-a-room"), Some(&admin))
            .await,
        400,
        "M_INVALID_PARAM",
    );

    // Blocking: nobody may join; unblocking lets them again.
    let block = format!("{V1}/rooms/{quiet}/block");
    assert_eq!(
        server.get(&block, Some(&admin)).await.1,
        json!({"block": false})
    );
    assert_eq!(
        server
            .put(&block, Some(&admin), json!({"block": true}))
            .await
            .0,
        200
    );
    let (_, blocked) = server.get(&block, Some(&admin)).await;
    assert_eq!(
        (&blocked["block"], &blocked["user_id"]),
        (&json!(true), &json!("@root:test.local"))
    );
    let invite = server
        .post(
            &format!("/_matrix/client/v3/rooms/{quiet}/invite"),
            Some(&alice),
            json!({"user_id": bob_id}),
        )
        .await;
    assert_error(&invite, 403, "M_FORBIDDEN");
    assert_eq!(
        server
            .put(&block, Some(&admin), json!({"block": false}))
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post(
                &format!("/_matrix/client/v3/rooms/{quiet}/invite"),
                Some(&alice),
                json!({"user_id": bob_id}),
            )
            .await
            .0,
        200
    );

    // Deleting (v2): everyone leaves, the alias goes, the room is purged and blocked.
    let (status, started) = server
        .delete(
            &format!("{V2}/rooms/{general}"),
            Some(&admin),
            json!({"block": true}),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let delete_id = started["delete_id"].as_str().expect("delete id").to_owned();
    let done = wait_for_deletion(&server, &admin, &delete_id).await;
    assert_eq!(done["status"], "complete", "{done}");
    let mut kicked: Vec<&str> = done["shutdown_room"]["kicked_users"]
        .as_array()
        .expect("kicked")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    kicked.sort_unstable();
    assert_eq!(kicked, [alice_id.as_str(), bob_id.as_str()]);
    assert_eq!(
        done["shutdown_room"]["local_aliases"],
        json!(["#general:test.local"])
    );
    let (_, by_room) = server
        .get(&format!("{V2}/rooms/{general}/delete_status"), Some(&admin))
        .await;
    assert_eq!(by_room["results"][0]["delete_id"], delete_id.as_str());
    assert_error(
        &server
            .get(&format!("{V1}/rooms/{general}"), Some(&admin))
            .await,
        404,
        "M_NOT_FOUND",
    );
    let (_, rooms) = server
        .get(&format!("{V1}/users/{alice_id}/joined_rooms"), Some(&admin))
        .await;
    assert!(
        !rooms["joined_rooms"]
            .as_array()
            .expect("rooms")
            .contains(&json!(general))
    );
    assert_error(&join(&server, &bob, &general).await, 403, "M_FORBIDDEN");
    assert_error(
        &server
            .get(
                "/_matrix/client/v3/directory/room/%23general:test.local",
                None,
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    let (_, events) = server
        .get(
            &format!("/_matrix/client/v3/rooms/{general}/messages?dir=b"),
            Some(&alice),
        )
        .await;
    assert!(
        events
            .get("chunk")
            .is_none_or(|c| c.as_array().is_some_and(Vec::is_empty)),
        "{events}"
    );
    // A sync after the deletion still works and shows the room as left.
    let (status, _) = server.get("/_matrix/client/v3/sync", Some(&alice)).await;
    assert_eq!(status, 200);

    // Deleting again is fine; a room never known is 404.
    let (status, again) = server
        .delete(&format!("{V2}/rooms/{general}"), Some(&admin), json!({}))
        .await;
    assert_eq!(status, 200, "{again}");
    let again = wait_for_deletion(&server, &admin, again["delete_id"].as_str().expect("id")).await;
    assert_eq!(again["status"], "complete");
    assert_error(
        &server
            .delete(
                &format!("{V2}/rooms/!never:test.local"),
                Some(&admin),
                json!({}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .delete(
                &format!("{V2}/rooms/{quiet}"),
                Some(&admin),
                json!({"purge": "yes"}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .get(&format!("{V2}/rooms/delete_status/nope"), Some(&admin))
            .await,
        404,
        "M_NOT_FOUND",
    );

    // The older synchronous form, with a replacement room for the members.
    let (status, result) = server
        .delete(
            &format!("{V1}/rooms/{quiet}"),
            Some(&admin),
            json!({"new_room_user_id": "@root:test.local", "message": "Moved."}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    let new_room = result["new_room_id"].as_str().expect("new room");
    let (_, moved) = server
        .get(&format!("{V1}/rooms/{new_room}/members"), Some(&admin))
        .await;
    assert!(
        moved["members"]
            .as_array()
            .expect("members")
            .contains(&json!(alice_id)),
        "{moved}"
    );
    let (_, history) = server
        .get(
            &format!("{V1}/rooms/{new_room}/messages?limit=50"),
            Some(&admin),
        )
        .await;
    let notice = history["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .find(|e| e["type"] == "m.room.message")
        .expect("the explanation");
    assert_eq!(notice["content"]["body"], "Moved.");
    assert_eq!(notice["sender"], "@root:test.local");
}

/// Uploads bytes; returns the media id.
async fn upload(server: &TestServer, token: &str, bytes: &[u8]) -> String {
    let response = server
        .http
        .post(format!("{}/_matrix/media/v3/upload", server.base))
        .bearer_auth(token)
        .header("content-type", "text/plain")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("sent");
    let body: Value = response.json().await.expect("json");
    let uri = body["content_uri"].as_str().expect("content uri");
    uri.rsplit('/').next().expect("id").to_owned()
}

async fn download(server: &TestServer, token: &str, media_id: &str) -> u16 {
    server
        .http
        .get(format!(
            "{}/_matrix/client/v1/media/download/test.local/{media_id}",
            server.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn media_is_listed_quarantined_protected_and_deleted() {
    let Setup {
        server,
        admin,
        alice_id,
        alice,
    } = setup().await;
    // Listings order by upload time in milliseconds: keep the uploads apart.
    let first = upload(&server, &alice, b"first file").await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    let twin = upload(&server, &alice, b"first file").await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    let second = upload(&server, &alice, b"second file").await;
    let room = create_room(&server, &alice, json!({})).await;
    let (status, _) = server
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/img"),
            Some(&alice),
            json!({"msgtype": "m.file", "body": "f", "url": format!("mxc://test.local/{second}")}),
        )
        .await;
    assert_eq!(status, 200);

    // A user's uploads, paged.
    let (status, listed) = server
        .get(
            &format!("{V1}/users/{alice_id}/media?limit=2"),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["total"], 3);
    assert_eq!(listed["next_token"], 2);
    assert_eq!(listed["media"][0]["media_id"], first.as_str());
    assert_eq!(listed["media"][0]["media_length"], 10);

    // A room's media, and quarantining it: downloads stop, until released.
    let (_, in_room) = server
        .get(&format!("{V1}/room/{room}/media"), Some(&admin))
        .await;
    assert_eq!(
        in_room["local"],
        json!([format!("mxc://test.local/{second}")])
    );
    let (_, quarantined) = server
        .post(
            &format!("{V1}/room/{room}/media/quarantine"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(quarantined["num_quarantined"], 1);
    assert_eq!(download(&server, &alice, &second).await, 404);
    assert_eq!(
        server
            .post(
                &format!("{V1}/media/unquarantine/test.local/{second}"),
                Some(&admin),
                json!({})
            )
            .await
            .0,
        200
    );
    assert_eq!(download(&server, &alice, &second).await, 200);

    // Protected media survives a user-wide quarantine; a single quarantine still applies.
    assert_eq!(
        server
            .post(
                &format!("{V1}/media/protect/{first}"),
                Some(&admin),
                json!({})
            )
            .await
            .0,
        200
    );
    let (_, quarantined) = server
        .post(
            &format!("{V1}/user/{alice_id}/media/quarantine"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(quarantined["num_quarantined"], 2);
    assert_eq!(download(&server, &alice, &first).await, 200);
    assert_eq!(download(&server, &alice, &twin).await, 404);
    assert_eq!(
        server
            .post(
                &format!("{V1}/media/quarantine/test.local/{first}"),
                Some(&admin),
                json!({})
            )
            .await
            .0,
        200
    );
    assert_eq!(download(&server, &alice, &first).await, 404);
    let (_, listed) = server
        .get(&format!("{V1}/users/{alice_id}/media"), Some(&admin))
        .await;
    assert_eq!(listed["media"][0]["quarantined_by"], "@root:test.local");
    assert_eq!(listed["media"][0]["safe_from_quarantine"], true);

    // Deleting one of two ids with the same bytes keeps the file for the other.
    let (status, deleted) = server
        .delete(
            &format!("{V1}/media/test.local/{first}"),
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"deleted_media": [first], "total": 1}));
    server
        .post(
            &format!("{V1}/media/unquarantine/test.local/{twin}"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(download(&server, &alice, &twin).await, 200);
    assert_error(
        &server
            .delete(
                &format!("{V1}/media/test.local/{first}"),
                Some(&admin),
                Value::Null,
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .delete(
                &format!("{V1}/media/elsewhere.org/{twin}"),
                Some(&admin),
                Value::Null,
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );

    // Bulk deletion by date: before_ts is required; avatars are kept unless asked.
    assert_error(
        &server
            .post(&format!("{V1}/media/delete"), Some(&admin), json!({}))
            .await,
        400,
        "M_MISSING_PARAM",
    );
    assert_error(
        &server
            .post(
                &format!("{V1}/media/delete?before_ts=-5"),
                Some(&admin),
                json!({}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    server
        .put(
            &format!("/_matrix/client/v3/profile/{alice_id}/avatar_url"),
            Some(&alice),
            json!({"avatar_url": format!("mxc://test.local/{twin}")}),
        )
        .await;
    let now = 4_000_000_000_000u64;
    let (_, bulk) = server
        .post(
            &format!("{V1}/media/delete?before_ts={now}"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(bulk["deleted_media"], json!([second]), "{bulk}");
    assert_eq!(download(&server, &alice, &twin).await, 200);
    let (_, bulk) = server
        .post(
            &format!("{V1}/media/delete?before_ts={now}&keep_profiles=false"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(bulk["total"], 1);
    assert_eq!(download(&server, &alice, &twin).await, 404);
    // Nothing is left on disk.
    let files = walk(&server.dir.path().join("media"));
    assert_eq!(files, 0, "stored files left after deleting all media");

    let (_, purged) = server
        .post(
            &format!("{V1}/purge_media_cache?before_ts={now}"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(purged, json!({"deleted": 0}));
}

/// Regular files under `dir`, not counting upload scratch space.
fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.ends_with("tmp") {
                0
            } else if path.is_dir() {
                walk(&path)
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn registration_tokens_are_managed() {
    let Setup { server, admin, .. } = setup().await;
    let base = format!("{V1}/registration_tokens");
    let (status, made) = server
        .post(
            &format!("{base}/new"),
            Some(&admin),
            json!({"token": "invite-1", "uses_allowed": 1}),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(
        made,
        json!({"token": "invite-1", "uses_allowed": 1, "pending": 0, "completed": 0, "expiry_time": null})
    );
    let (_, random) = server
        .post(&format!("{base}/new"), Some(&admin), json!({"length": 7}))
        .await;
    assert_eq!(random["token"].as_str().map(str::len), Some(7));
    let (_, empty_body) = server
        .post(&format!("{base}/new"), Some(&admin), Value::Null)
        .await;
    assert_eq!(empty_body["token"].as_str().map(str::len), Some(16));

    for bad in [
        json!({"uses_allowed": -1}),
        json!({"uses_allowed": "one"}),
        json!({"expiry_time": 1000}),
        json!({"length": 65}),
        json!({"token": "has space"}),
        json!({"token": "invite-1"}),
    ] {
        assert_error(
            &server.post(&format!("{base}/new"), Some(&admin), bad).await,
            400,
            "M_INVALID_PARAM",
        );
    }

    // A registration uses it up (the UIA stage reserves a use; the new account completes it).
    let services = &server.server.as_ref().expect("running").services;
    assert!(
        services
            .registration_tokens
            .reserve("invite-1")
            .expect("reserve")
    );
    services
        .registration_tokens
        .complete("invite-1")
        .expect("complete");
    let (_, shown) = server.get(&format!("{base}/invite-1"), Some(&admin)).await;
    assert_eq!(
        (&shown["completed"], &shown["pending"]),
        (&json!(1), &json!(0))
    );
    let (_, valid) = server
        .get(&format!("{base}?valid=true"), Some(&admin))
        .await;
    assert!(
        !valid["registration_tokens"]
            .as_array()
            .expect("list")
            .iter()
            .any(|t| t["token"] == "invite-1")
    );
    let (_, invalid) = server
        .get(&format!("{base}?valid=false"), Some(&admin))
        .await;
    assert_eq!(
        invalid["registration_tokens"].as_array().map(Vec::len),
        Some(1)
    );

    // More uses, an expiry, then none; then delete.
    let expiry = 4_000_000_000_000u64;
    let (status, changed) = server
        .put(
            &format!("{base}/invite-1"),
            Some(&admin),
            json!({"uses_allowed": 5, "expiry_time": expiry}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (&changed["uses_allowed"], &changed["expiry_time"]),
        (&json!(5), &json!(expiry))
    );
    let (_, cleared) = server
        .put(
            &format!("{base}/invite-1"),
            Some(&admin),
            json!({"uses_allowed": null}),
        )
        .await;
    assert_eq!(
        (&cleared["uses_allowed"], &cleared["expiry_time"]),
        (&Value::Null, &json!(expiry))
    );
    let (_, all) = server.get(&base, Some(&admin)).await;
    assert_eq!(all["registration_tokens"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        server
            .delete(&format!("{base}/invite-1"), Some(&admin), Value::Null)
            .await
            .0,
        200
    );
    for response in [
        server.get(&format!("{base}/invite-1"), Some(&admin)).await,
        server
            .delete(&format!("{base}/invite-1"), Some(&admin), Value::Null)
            .await,
        server
            .put(&format!("{base}/invite-1"), Some(&admin), json!({}))
            .await,
    ] {
        assert_error(&response, 404, "M_NOT_FOUND");
    }
}

#[tokio::test]
async fn server_notices_reach_the_user_in_one_tagged_room() {
    let Setup {
        server,
        admin,
        alice_id,
        alice,
    } = setup().await;
    let notice =
        |body: &str| json!({"user_id": alice_id, "content": {"msgtype": "m.text", "body": body}});
    let (status, sent) = server
        .post(
            &format!("{V1}/send_server_notice"),
            Some(&admin),
            notice("Maintenance at 6"),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert!(
        sent["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with('$'))
    );

    // Alice is invited to a room tagged m.server_notice; joining shows the notice.
    let (_, sync) = server.get("/_matrix/client/v3/sync", Some(&alice)).await;
    let invites = sync["rooms"]["invite"].as_object().expect("invites");
    assert_eq!(invites.len(), 1, "{sync}");
    let room = invites.keys().next().expect("room").clone();
    assert_eq!(join(&server, &alice, &room).await.0, 200);
    let (_, sync) = server.get("/_matrix/client/v3/sync", Some(&alice)).await;
    let joined = &sync["rooms"]["join"][&room];
    let tags = joined["account_data"]["events"]
        .as_array()
        .expect("account data")
        .iter()
        .find(|e| e["type"] == "m.tag")
        .expect("tag");
    assert!(tags["content"]["tags"]["m.server_notice"].is_object());
    let messages = server
        .get(
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"),
            Some(&alice),
        )
        .await
        .1;
    assert!(
        messages["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .any(|e| e["content"]["body"] == "Maintenance at 6"
                && e["sender"] == "@notices:test.local")
    );
    // Alice cannot write there.
    assert_error(
        &send_text(&server, &alice, &room, "ok").await,
        403,
        "M_FORBIDDEN",
    );

    // The next notice goes to the same room; a retried PUT sends once.
    let path = format!("{V1}/send_server_notice/txn-7");
    let (_, first) = server.put(&path, Some(&admin), notice("Done")).await;
    let (_, retry) = server.put(&path, Some(&admin), notice("Done")).await;
    assert_eq!(first["event_id"], retry["event_id"]);
    let (_, rooms) = server
        .get(&format!("{V1}/users/{alice_id}/joined_rooms"), Some(&admin))
        .await;
    assert_eq!(rooms["joined_rooms"], json!([room]));

    // Bad targets.
    for (user, status, errcode) in [
        ("@nobody:test.local", 404, "M_NOT_FOUND"),
        ("@alice:elsewhere.org", 400, "M_INVALID_PARAM"),
        ("alice", 400, "M_INVALID_PARAM"),
    ] {
        let body = json!({"user_id": user, "content": {"body": "x"}});
        assert_error(
            &server
                .post(&format!("{V1}/send_server_notice"), Some(&admin), body)
                .await,
            status,
            errcode,
        );
    }
    assert_error(
        &server
            .post(
                &format!("{V1}/send_server_notice"),
                Some(&admin),
                json!({"user_id": alice_id, "content": "text"}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn server_notices_can_be_off() {
    let server = TestServer::start().await;
    let (root, admin, _) = server.register("root", "pw-root-123").await;
    let services = &server.server.as_ref().expect("running").services;
    services
        .set_admin(&ruma::UserId::parse(&root).expect("id"), true)
        .expect("admin");
    let body = json!({"user_id": root, "content": {"msgtype": "m.text", "body": "x"}});
    assert_error(
        &server
            .post(&format!("{V1}/send_server_notice"), Some(&admin), body)
            .await,
        400,
        "M_UNKNOWN",
    );
}

/// The events of a room a user can read.
async fn bodies(server: &TestServer, token: &str, room: &str) -> Vec<String> {
    let (_, messages) = server
        .get(
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"),
            Some(token),
        )
        .await;
    messages["chunk"]
        .as_array()
        .map(|chunk| {
            chunk
                .iter()
                .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn moderation_from_report_to_deleted_room() {
    let Setup {
        server,
        admin,
        alice_id,
        alice,
    } = setup().await;
    let (spammer_id, spammer, _) = server.register("spammer", "pw-spam-1234").await;
    let room = create_room(
        &server,
        &alice,
        json!({"name": "Town square", "preset": "public_chat"}),
    )
    .await;
    assert_eq!(join(&server, &spammer, &room).await.0, 200);
    let (_, spam) = send_text(&server, &spammer, &room, "buy cheap watches").await;
    let spam_id = spam["event_id"].as_str().expect("event id").to_owned();

    // Alice reports the message, the room and the user.
    let (status, _) = server
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/report/{spam_id}"),
            Some(&alice),
            json!({"reason": "spam", "score": -100}),
        )
        .await;
    assert_eq!(status, 200);
    server
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/report"),
            Some(&alice),
            json!({"reason": "spam room"}),
        )
        .await;
    server
        .post(
            &format!("/_matrix/client/v3/users/{spammer_id}/report"),
            Some(&alice),
            json!({"reason": "spammer"}),
        )
        .await;

    // The admin lists the reports and reads the event report in full.
    let (status, reports) = server
        .get(&format!("{V1}/event_reports"), Some(&admin))
        .await;
    assert_eq!(status, 200, "{reports}");
    assert_eq!(reports["total"], 1);
    let report = &reports["event_reports"][0];
    assert_eq!(report["event_id"], spam_id.as_str());
    assert_eq!(report["user_id"], alice_id.as_str());
    assert_eq!(report["sender"], spammer_id.as_str());
    assert_eq!(report["name"], "Town square");
    assert_eq!(report["reason"], "spam");
    let id = report["id"].as_u64().expect("id");
    let (_, full) = server
        .get(&format!("{V1}/event_reports/{id}"), Some(&admin))
        .await;
    assert_eq!(full["event_json"]["content"]["body"], "buy cheap watches");
    let (_, by_room) = server
        .get(&format!("{V1}/event_reports?room_id={room}"), Some(&admin))
        .await;
    assert_eq!(by_room["total"], 1);
    let (_, other_room) = server
        .get(
            &format!("{V1}/event_reports?room_id=!other:test.local"),
            Some(&admin),
        )
        .await;
    assert_eq!(other_room["total"], 0);
    let (_, room_reports) = server
        .get(&format!("{V1}/room_reports"), Some(&admin))
        .await;
    assert_eq!(room_reports["room_reports"][0]["reason"], "spam room");
    let (_, user_reports) = server
        .get(&format!("{V1}/user_reports"), Some(&admin))
        .await;
    assert_eq!(
        user_reports["user_reports"][0]["target_user_id"],
        spammer_id.as_str()
    );
    // Reports of one kind are not found under another; bad ids are bad parameters.
    let user_report = user_reports["user_reports"][0]["id"].as_u64().expect("id");
    assert_error(
        &server
            .get(&format!("{V1}/event_reports/{user_report}"), Some(&admin))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .get(&format!("{V1}/event_reports/abc"), Some(&admin))
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .get(
                &format!("{V1}/event_reports?room_id=nonsense"),
                Some(&admin),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .get(&format!("{V1}/event_reports?dir=up"), Some(&admin))
            .await,
        400,
        "M_INVALID_PARAM",
    );

    // Shadow ban: the spammer's sends seem to work, but nobody sees them.
    assert_eq!(
        server
            .post(
                &format!("{V1}/users/{spammer_id}/shadow_ban"),
                Some(&admin),
                json!({})
            )
            .await
            .0,
        200
    );
    let (status, hidden) = send_text(&server, &spammer, &room, "more watches").await;
    assert_eq!(status, 200, "{hidden}");
    let hidden_id = hidden["event_id"].as_str().expect("an event id");
    assert!(hidden_id.starts_with('$'));
    assert!(
        !bodies(&server, &alice, &room)
            .await
            .contains(&"more watches".to_owned())
    );
    assert_error(
        &server
            .get(
                &format!("/_matrix/client/v3/rooms/{room}/event/{hidden_id}"),
                Some(&alice),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    let (status, _) = server
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/"),
            Some(&spammer),
            json!({"topic": "watches"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, shown) = server
        .get(&format!("{V2}/users/{spammer_id}"), Some(&admin))
        .await;
    assert_eq!(shown["shadow_banned"], true);
    // Lifting the ban lets messages through again.
    assert_eq!(
        server
            .delete(
                &format!("{V1}/users/{spammer_id}/shadow_ban"),
                Some(&admin),
                Value::Null
            )
            .await
            .0,
        200
    );
    send_text(&server, &spammer, &room, "sorry").await;
    assert!(
        bodies(&server, &alice, &room)
            .await
            .contains(&"sorry".to_owned())
    );
    server
        .post(
            &format!("{V1}/users/{spammer_id}/shadow_ban"),
            Some(&admin),
            json!({}),
        )
        .await;

    // Deactivation: the spammer is out of the room and cannot log in.
    server
        .post(
            &format!("{V1}/deactivate/{spammer_id}"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&spammer))
            .await
            .0,
        401
    );
    let (_, members) = server
        .get(&format!("{V1}/rooms/{room}/members"), Some(&admin))
        .await;
    assert_eq!(members["members"], json!([alice_id]));

    // The room goes; the report is resolved.
    let (_, started) = server
        .delete(
            &format!("{V2}/rooms/{room}"),
            Some(&admin),
            json!({"block": true}),
        )
        .await;
    let done = wait_for_deletion(&server, &admin, started["delete_id"].as_str().expect("id")).await;
    assert_eq!(done["shutdown_room"]["kicked_users"], json!([alice_id]));
    assert_error(&join(&server, &alice, &room).await, 403, "M_FORBIDDEN");
    assert_eq!(
        server
            .delete(
                &format!("{V1}/event_reports/{id}"),
                Some(&admin),
                Value::Null
            )
            .await
            .0,
        200
    );
    let (_, reports) = server
        .get(&format!("{V1}/event_reports"), Some(&admin))
        .await;
    assert_eq!(reports["total"], 0);
    assert_error(
        &server
            .delete(
                &format!("{V1}/event_reports/{id}"),
                Some(&admin),
                Value::Null,
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn client_whois_is_for_admins_and_the_user_themself() {
    let Setup {
        server,
        admin,
        alice_id,
        alice,
    } = setup().await;
    let (_, bob, _) = server.register("bob", "pw-bob-1234").await;
    let path = format!("/_matrix/client/v3/admin/whois/{alice_id}");
    for token in [&alice, &admin] {
        let (status, body) = server.get(&path, Some(token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user_id"], alice_id.as_str());
        let devices = body["devices"].as_object().expect("devices");
        assert_eq!(devices.len(), 1);
        let connections = &devices.values().next().expect("device")["sessions"][0]["connections"];
        assert_eq!(connections[0]["ip"], "127.0.0.1", "{body}");
    }
    assert_error(&server.get(&path, Some(&bob)).await, 403, "M_FORBIDDEN");
    assert_error(&server.get(&path, None).await, 401, "M_MISSING_TOKEN");
    assert_error(
        &server
            .get(
                "/_matrix/client/v3/admin/whois/@nobody:test.local",
                Some(&admin),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
}
