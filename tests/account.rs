//! Password changes and deactivation behind UIA, third-party ids.

mod common;

use common::{TestServer, assert_error};
use serde_json::{Value, json};

const PASSWORD: &str = "/_matrix/client/v3/account/password";

fn password_auth(user: &str, password: &str, session: Option<&str>) -> Value {
    let mut auth = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password});
    if let Some(session) = session {
        auth["session"] = json!(session);
    }
    auth
}

#[tokio::test]
async fn change_password_with_uia() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("alice", "old-password").await;
    let (_, other) = server.login("alice", "old-password").await;
    let other = other["access_token"].as_str().expect("token").to_owned();

    let (status, body) = server
        .post(
            PASSWORD,
            Some(&token),
            json!({"new_password": "new-password"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["flows"], json!([{"stages": ["m.login.password"]}]));
    let session = body["session"].as_str().expect("session").to_owned();

    let (status, body) = server
        .post(PASSWORD, Some(&token), json!({"new_password": "new-password", "auth": password_auth("alice", "guess", Some(&session))}))
        .await;
    assert_eq!(status, 401, "wrong password fails the stage");
    assert_eq!(body["errcode"], "M_FORBIDDEN");
    assert_eq!(body["session"], session.as_str());

    // Someone else's identity does not count, even with the right password for it.
    let (status, _) = server
        .post(PASSWORD, Some(&token), json!({"new_password": "new-password", "auth": password_auth("mallory", "old-password", Some(&session))}))
        .await;
    assert_eq!(status, 401);

    let (status, body) = server
        .post(PASSWORD, Some(&token), json!({"new_password": "new-password", "auth": password_auth("alice", "old-password", Some(&session))}))
        .await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(server.login("alice", "old-password").await.0, 403);
    assert_eq!(server.login("alice", "new-password").await.0, 200);
    // logout_devices defaults to true: other sessions end, this one stays.
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&token))
            .await
            .0,
        200
    );
    assert_error(
        &server
            .get("/_matrix/client/v3/account/whoami", Some(&other))
            .await,
        401,
        "M_UNKNOWN_TOKEN",
    );
}

#[tokio::test]
async fn change_password_keeping_devices() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("bob", "old-password").await;
    let (_, other) = server.login("bob", "old-password").await;
    let other = other["access_token"].as_str().expect("token").to_owned();
    let (status, _) = server
        .post(PASSWORD, Some(&token), json!({"new_password": "n3w-password", "logout_devices": false, "auth": password_auth("bob", "old-password", None)}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&other))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn change_password_bad_input() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("carl", "old-password").await;
    assert_error(
        &server
            .post(PASSWORD, None, json!({"new_password": "x"}))
            .await,
        401,
        "M_MISSING_TOKEN",
    );
    assert_error(
        &server.post(PASSWORD, Some(&token), json!({})).await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .post(PASSWORD, Some(&token), json!({"new_password": ""}))
            .await,
        400,
        "M_WEAK_PASSWORD",
    );
    let bogus_session = json!({"new_password": "abc12345", "auth": password_auth("carl", "old-password", Some("nope"))});
    assert_error(
        &server.post(PASSWORD, Some(&token), bogus_session).await,
        400,
        "M_UNKNOWN",
    );
    // A session started for another endpoint cannot be used here.
    let (_, body) = server
        .post(
            "/_matrix/client/v3/account/deactivate",
            Some(&token),
            json!({}),
        )
        .await;
    let session = body["session"].as_str().expect("session");
    let cross = json!({"new_password": "abc12345", "auth": password_auth("carl", "old-password", Some(session))});
    assert_error(
        &server.post(PASSWORD, Some(&token), cross).await,
        403,
        "M_FORBIDDEN",
    );
    // Unsupported stage types fail the stage.
    let (status, body) = server
        .post(
            PASSWORD,
            Some(&token),
            json!({"new_password": "abc12345", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errcode"], "M_UNRECOGNIZED");
}

#[tokio::test]
async fn deactivate_needs_the_password() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("dora", "pw-dora-12").await;
    let (status, body) = server
        .post(
            "/_matrix/client/v3/account/deactivate",
            Some(&token),
            json!({"auth": password_auth("dora", "nope", None)}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errcode"], "M_FORBIDDEN");
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&token))
            .await
            .0,
        200
    );
    assert_error(
        &server
            .post("/_matrix/client/v3/account/deactivate", None, json!({}))
            .await,
        401,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn third_party_ids_are_empty() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("emma", "pw-emma-12").await;
    let (status, body) = server
        .get("/_matrix/client/v3/account/3pid", Some(&token))
        .await;
    assert_eq!((status.as_u16(), body), (200, json!({"threepids": []})));
    assert_error(
        &server.get("/_matrix/client/v3/account/3pid", None).await,
        401,
        "M_MISSING_TOKEN",
    );
}
