//! `POST /register` with user-interactive auth, availability, tokens, guests.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

const REGISTER: &str = "/_matrix/client/v3/register";

#[tokio::test]
async fn dummy_flow_in_two_steps() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post(
            REGISTER,
            None,
            json!({"username": "alice", "password": "pw-alice-1"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["flows"], json!([{"stages": ["m.login.dummy"]}]));
    assert!(body["params"].is_object());
    let session = body["session"].as_str().expect("session").to_owned();

    let (status, body) = server
        .post(
            REGISTER,
            None,
            json!({
                "username": "alice", "password": "pw-alice-1",
                "device_id": "MYPHONE", "initial_device_display_name": "Alice's phone",
                "auth": {"type": "m.login.dummy", "session": session}
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "@alice:test.local");
    assert_eq!(body["device_id"], "MYPHONE");
    let token = body["access_token"].as_str().expect("token");
    assert!(token.len() >= 43, "256-bit token: {token}");

    let (status, device) = server
        .get("/_matrix/client/v3/devices/MYPHONE", Some(token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(device["display_name"], "Alice's phone");

    // The same session cannot be replayed once it completed.
    let replay = server
        .post(REGISTER, None, json!({"username": "alice2", "password": "x1", "auth": {"type": "m.login.dummy", "session": session}}))
        .await;
    assert_error(&replay, 400, "M_UNKNOWN");
}

#[tokio::test]
async fn names_are_validated_and_unique() {
    let server = TestServer::start().await;
    server.register("bob", "pw-bob-123").await;
    let auth = json!({"type": "m.login.dummy"});
    assert_error(
        &server
            .post(
                REGISTER,
                None,
                json!({"username": "bob", "password": "x1", "auth": auth}),
            )
            .await,
        400,
        "M_USER_IN_USE",
    );
    for bad in ["Bob", "bo b", "bob:x", "ünïcode", ""] {
        let response = server
            .post(
                REGISTER,
                None,
                json!({"username": bad, "password": "x1", "auth": auth}),
            )
            .await;
        assert_error(&response, 400, "M_INVALID_USERNAME");
    }
    // Taken names are reported before any UIA round trip.
    assert_error(
        &server
            .post(REGISTER, None, json!({"username": "bob", "password": "x1"}))
            .await,
        400,
        "M_USER_IN_USE",
    );

    let (status, body) = server
        .get("/_matrix/client/v3/register/available?username=carol", None)
        .await;
    assert_eq!((status.as_u16(), body), (200, json!({"available": true})));
    assert_error(
        &server
            .get("/_matrix/client/v3/register/available?username=bob", None)
            .await,
        400,
        "M_USER_IN_USE",
    );
    assert_error(
        &server
            .get("/_matrix/client/v3/register/available?username=B%20B", None)
            .await,
        400,
        "M_INVALID_USERNAME",
    );
    assert_error(
        &server
            .get("/_matrix/client/v3/register/available", None)
            .await,
        400,
        "M_INVALID_PARAM",
    );
}

#[tokio::test]
async fn password_is_required_and_bounded() {
    let server = TestServer::start().await;
    let auth = json!({"type": "m.login.dummy"});
    assert_error(
        &server
            .post(REGISTER, None, json!({"username": "nopw", "auth": auth}))
            .await,
        400,
        "M_MISSING_PARAM",
    );
    let long = "p".repeat(600);
    assert_error(
        &server
            .post(
                REGISTER,
                None,
                json!({"username": "longpw", "password": long, "auth": auth}),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &server
            .post(
                REGISTER,
                None,
                json!({"username": "emptypw", "password": "", "auth": auth}),
            )
            .await,
        400,
        "M_WEAK_PASSWORD",
    );
}

#[tokio::test]
async fn inhibit_login_and_generated_names() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post(REGISTER, None, json!({"username": "quiet", "password": "pw-quiet-1", "inhibit_login": true, "auth": {"type": "m.login.dummy"}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["user_id"], "@quiet:test.local");
    assert!(
        body.get("access_token").is_none() && body["device_id"].is_null(),
        "{body}"
    );
    let (status, _) = server.login("quiet", "pw-quiet-1").await;
    assert_eq!(status, 200);

    let (status, body) = server
        .post(
            REGISTER,
            None,
            json!({"password": "pw-anon-1", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["user_id"]
            .as_str()
            .expect("id")
            .ends_with(":test.local")
    );
}

#[tokio::test]
async fn refresh_tokens_on_registration() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post(REGISTER, None, json!({"username": "fresh", "password": "pw-fresh-1", "refresh_token": true, "auth": {"type": "m.login.dummy"}}))
        .await;
    assert_eq!(status, 200);
    assert!(
        body["refresh_token"].is_string() && body["expires_in_ms"].as_u64().is_some(),
        "{body}"
    );
}

#[tokio::test]
async fn disabled_registration_is_forbidden() {
    let server = TestServer::start_with(|c| c.allow_registration = false).await;
    let response = server
        .post(
            REGISTER,
            None,
            json!({"username": "nope", "password": "x1", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_error(&response, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn guests_only_when_enabled() {
    let server = TestServer::start().await;
    assert_error(
        &server
            .post(&format!("{REGISTER}?kind=guest"), None, json!({}))
            .await,
        403,
        "M_GUEST_ACCESS_FORBIDDEN",
    );

    let server = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let (status, body) = server
        .post(&format!("{REGISTER}?kind=guest"), None, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("token");
    let (status, whoami) = server
        .get("/_matrix/client/v3/account/whoami", Some(token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(whoami["is_guest"], true);
}

#[tokio::test]
async fn registration_tokens() {
    let server = TestServer::start_with(|c| c.registration_requires_token = true).await;
    let tokens = &server
        .server
        .as_ref()
        .expect("running")
        .services
        .registration_tokens;
    tokens
        .create(Some("invite-1".into()), Some(1), None)
        .expect("token");

    let (status, body) = server
        .post(
            REGISTER,
            None,
            json!({"username": "tok", "password": "pw-tok-12"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["flows"],
        json!([{"stages": ["m.login.registration_token"]}])
    );
    let session = body["session"].as_str().expect("session").to_owned();

    // The dummy stage is not offered when tokens are required.
    let (status, body) = server
        .post(REGISTER, None, json!({"username": "tok", "password": "pw-tok-12", "auth": {"type": "m.login.dummy", "session": session}}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errcode"], "M_UNRECOGNIZED");

    let (status, body) = server
        .post(REGISTER, None, json!({"username": "tok", "password": "pw-tok-12", "auth": {"type": "m.login.registration_token", "token": "wrong", "session": session}}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errcode"], "M_UNAUTHORIZED");

    let validity = "/_matrix/client/v1/register/m.login.registration_token/validity";
    let (status, body) = server
        .get(&format!("{validity}?token=invite-1"), None)
        .await;
    assert_eq!((status.as_u16(), body), (200, json!({"valid": true})));

    let (status, body) = server
        .post(REGISTER, None, json!({"username": "tok", "password": "pw-tok-12", "auth": {"type": "m.login.registration_token", "token": "invite-1", "session": session}}))
        .await;
    assert_eq!(status, 200, "{body}");

    // Its one use is spent.
    let (_, body) = server
        .get(&format!("{validity}?token=invite-1"), None)
        .await;
    assert_eq!(body, json!({"valid": false}));
    let token = tokens.get("invite-1").expect("get").expect("exists");
    assert_eq!((token.pending, token.completed), (0, 1));

    let open = TestServer::start().await;
    assert_error(
        &open.get(&format!("{validity}?token=x"), None).await,
        403,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn concurrent_registrations_of_one_name() {
    let server = TestServer::start().await;
    let attempts = (0..8).map(|_| {
        server.post(
            REGISTER,
            None,
            json!({"username": "race", "password": "pw-race-1", "auth": {"type": "m.login.dummy"}}),
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let ok = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(ok, 1, "exactly one wins: {results:?}");
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s != 200)
            .all(|(_, b)| b["errcode"] == "M_USER_IN_USE")
    );
}
