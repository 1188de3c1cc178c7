//! Device listing, renaming and deletion.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

#[tokio::test]
async fn list_get_rename() {
    let server = TestServer::start().await;
    let (_, token, device_id) = server.register("alice", "pw-alice-1").await;
    let (status, body) = server.get("/_matrix/client/v3/devices", Some(&token)).await;
    assert_eq!(status, 200);
    let devices = body["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["device_id"], device_id.as_str());
    assert_eq!(devices[0]["last_seen_ip"], "127.0.0.1", "{body}");
    assert!(devices[0]["last_seen_ts"].as_u64().is_some());

    let path = format!("/_matrix/client/v3/devices/{device_id}");
    assert_eq!(
        server
            .put(&path, Some(&token), json!({"display_name": "Work laptop"}))
            .await
            .0,
        200
    );
    let (status, body) = server.get(&path, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["display_name"], "Work laptop");

    assert_error(
        &server
            .get("/_matrix/client/v3/devices/NOPE", Some(&token))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .put(
                "/_matrix/client/v3/devices/NOPE",
                Some(&token),
                json!({"display_name": "x"}),
            )
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &server.get("/_matrix/client/v3/devices", None).await,
        401,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn other_users_devices_are_invisible() {
    let server = TestServer::start().await;
    let (_, alice, alice_device) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let _ = alice;
    let path = format!("/_matrix/client/v3/devices/{alice_device}");
    assert_error(&server.get(&path, Some(&bob)).await, 404, "M_NOT_FOUND");
    assert_error(
        &server.delete(&path, Some(&bob), json!({})).await,
        404,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn delete_one_with_uia_revokes_its_token() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("carol", "pw-carol-1").await;
    let (_, other) = server.login("carol", "pw-carol-1").await;
    let other_token = other["access_token"].as_str().expect("token");
    let other_device = other["device_id"].as_str().expect("device");
    let path = format!("/_matrix/client/v3/devices/{other_device}");

    let (status, body) = server.delete(&path, Some(&token), json!({})).await;
    assert_eq!(status, 401);
    let session = body["session"].as_str().expect("session");
    let auth = json!({"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "carol"}, "password": "pw-carol-1", "session": session}});
    let (status, body) = server.delete(&path, Some(&token), auth).await;
    assert_eq!(status, 200, "{body}");
    assert_error(
        &server
            .get("/_matrix/client/v3/account/whoami", Some(other_token))
            .await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    assert_error(&server.get(&path, Some(&token)).await, 404, "M_NOT_FOUND");
}

#[tokio::test]
async fn delete_many_with_uia() {
    let server = TestServer::start().await;
    let (_, token, own_device) = server.register("dan", "pw-dan-123").await;
    let mut others = Vec::new();
    for _ in 0..3 {
        let (_, login) = server.login("dan", "pw-dan-123").await;
        others.push((
            login["device_id"].as_str().expect("id").to_owned(),
            login["access_token"].as_str().expect("t").to_owned(),
        ));
    }
    let ids: Vec<&str> = others
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(["UNKNOWN"])
        .collect();
    let (status, _) = server
        .post(
            "/_matrix/client/v3/delete_devices",
            Some(&token),
            json!({"devices": ids}),
        )
        .await;
    assert_eq!(status, 401);
    let auth = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dan"}, "password": "pw-dan-123"});
    let (status, body) = server
        .post(
            "/_matrix/client/v3/delete_devices",
            Some(&token),
            json!({"devices": ids, "auth": auth}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (_, other_token) in &others {
        assert_error(
            &server
                .get("/_matrix/client/v3/account/whoami", Some(other_token))
                .await,
            401,
            "M_UNKNOWN_TOKEN",
        );
    }
    let (_, body) = server.get("/_matrix/client/v3/devices", Some(&token)).await;
    assert_eq!(body["devices"].as_array().expect("list").len(), 1);
    assert_eq!(body["devices"][0]["device_id"], own_device.as_str());
    assert_error(
        &server
            .post(
                "/_matrix/client/v3/delete_devices",
                Some(&token),
                json!({"devices": "x"}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
}
