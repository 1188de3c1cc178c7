//! Login, refresh, whoami, logout, token handling and rate limits.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

const LOGIN: &str = "/_matrix/client/v3/login";
const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

#[tokio::test]
async fn login_flows_and_forms() {
    let server = TestServer::start().await;
    server.register("alice", "pw-alice-1").await;

    let (status, body) = server.get(LOGIN, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["flows"], json!([{"type": "m.login.password"}]));

    // Localpart, full user id, and the legacy top-level `user` field.
    let (status, body) = server.login("alice", "pw-alice-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "@alice:test.local");
    assert_eq!(body["home_server"], "test.local");
    assert!(body["well_known"]["m.homeserver"]["base_url"].is_string());
    assert!(body.get("refresh_token").is_none() && body.get("expires_in_ms").is_none());
    let (status, _) = server.login("@alice:test.local", "pw-alice-1").await;
    assert_eq!(status, 200);
    let (status, _) = server.login("ALICE", "pw-alice-1").await;
    assert_eq!(status, 200, "user names are matched case-insensitively");
    let (status, body) = server
        .post(
            LOGIN,
            None,
            json!({"type": "m.login.password", "user": "alice", "password": "pw-alice-1"}),
        )
        .await;
    assert_eq!(status, 200, "legacy form: {body}");
    // r0 path.
    let (status, _) = server
        .post(
            "/_matrix/client/r0/login",
            None,
            json!({"type": "m.login.password", "user": "alice", "password": "pw-alice-1"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn login_failures() {
    let server = TestServer::start().await;
    server.register("bob", "pw-bob-123").await;
    assert_error(&server.login("bob", "wrong").await, 403, "M_FORBIDDEN");
    assert_error(&server.login("nobody", "wrong").await, 403, "M_FORBIDDEN");
    assert_error(
        &server.login("@bob:elsewhere.example", "pw-bob-123").await,
        403,
        "M_FORBIDDEN",
    );
    let threepid = json!({"type": "m.login.password", "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "b@x.y"}, "password": "p"});
    assert_error(
        &server.post(LOGIN, None, threepid).await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .post(
                LOGIN,
                None,
                json!({"type": "m.login.token", "token": "abc"}),
            )
            .await,
        400,
        "M_UNKNOWN",
    );
    assert_error(
        &server
            .post(
                LOGIN,
                None,
                json!({"type": "m.login.password", "password": "p"}),
            )
            .await,
        400,
        "M_MISSING_PARAM",
    );
    assert_error(
        &server
            .post(LOGIN, None, json!({"type": "m.login.password"}))
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server.post(LOGIN, None, json!({})).await,
        400,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn tokens_header_query_and_errors() {
    let server = TestServer::start().await;
    let (user_id, token, device_id) = server.register("carol", "pw-carol-1").await;

    let (status, body) = server.get(WHOAMI, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["user_id"], user_id.as_str());
    assert_eq!(body["device_id"], device_id.as_str());
    assert!(
        body["is_guest"].is_null() || body["is_guest"] == false,
        "{body}"
    );

    let (status, _) = server
        .get(&format!("{WHOAMI}?access_token={token}"), None)
        .await;
    assert_eq!(status, 200, "query-parameter tokens still work");

    assert_error(&server.get(WHOAMI, None).await, 401, "M_MISSING_TOKEN");
    let unknown = server.get(WHOAMI, Some("mya_nonsense")).await;
    assert_error(&unknown, 401, "M_UNKNOWN_TOKEN");
    assert_ne!(
        unknown.1["soft_logout"], true,
        "a revoked token is not a soft logout"
    );
    let response = server
        .http
        .get(format!("{}{WHOAMI}", server.base))
        .header("Authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn device_id_reuse_replaces_the_old_token() {
    let server = TestServer::start().await;
    server.register("dave", "pw-dave-12").await;
    let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dave"}, "password": "pw-dave-12", "device_id": "LAPTOP", "initial_device_display_name": "Laptop"});
    let (_, first) = server.post(LOGIN, None, body.clone()).await;
    let (_, second) = server.post(LOGIN, None, body).await;
    assert_eq!(first["device_id"], "LAPTOP");
    assert_eq!(second["device_id"], "LAPTOP");
    let first_token = first["access_token"].as_str().expect("token");
    let second_token = second["access_token"].as_str().expect("token");
    assert_error(
        &server.get(WHOAMI, Some(first_token)).await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    let (status, devices) = server
        .get("/_matrix/client/v3/devices", Some(second_token))
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = devices["devices"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["device_id"].as_str())
        .collect();
    assert_eq!(
        ids.iter().filter(|id| **id == "LAPTOP").count(),
        1,
        "{devices}"
    );
}

#[tokio::test]
async fn refresh_tokens_expire_and_rotate() {
    let server = TestServer::start_with(|c| c.refreshable_access_token_lifetime_ms = 400).await;
    server.register("erin", "pw-erin-12").await;
    let (status, body) = server
        .post(LOGIN, None, json!({"type": "m.login.password", "user": "erin", "password": "pw-erin-12", "refresh_token": true}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in_ms"], 400);
    let access = body["access_token"].as_str().expect("access").to_owned();
    let refresh = body["refresh_token"].as_str().expect("refresh").to_owned();
    assert_eq!(server.get(WHOAMI, Some(&access)).await.0, 200);

    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let expired = server.get(WHOAMI, Some(&access)).await;
    assert_error(&expired, 401, "M_UNKNOWN_TOKEN");
    assert_eq!(expired.1["soft_logout"], true);

    let (status, body) = server
        .post(
            "/_matrix/client/v3/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let new_access = body["access_token"].as_str().expect("access");
    assert!(body["refresh_token"].is_string() && body["expires_in_ms"] == 400);
    assert_eq!(server.get(WHOAMI, Some(new_access)).await.0, 200);
    assert_error(
        &server
            .post(
                "/_matrix/client/v3/refresh",
                None,
                json!({"refresh_token": refresh}),
            )
            .await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    assert_error(
        &server
            .post("/_matrix/client/v3/refresh", None, json!({}))
            .await,
        400,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn logout_and_logout_all() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("frank", "pw-frank-1").await;
    let (_, second) = server.login("frank", "pw-frank-1").await;
    let (_, third) = server.login("frank", "pw-frank-1").await;
    let second = second["access_token"].as_str().expect("token");
    let third = third["access_token"].as_str().expect("token");

    assert_eq!(
        server
            .post("/_matrix/client/v3/logout", Some(&token), json!({}))
            .await
            .0,
        200
    );
    assert_error(
        &server.get(WHOAMI, Some(&token)).await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    let (_, devices) = server.get("/_matrix/client/v3/devices", Some(second)).await;
    assert_eq!(
        devices["devices"].as_array().expect("list").len(),
        2,
        "logout deletes the device"
    );

    assert_eq!(
        server
            .post("/_matrix/client/v3/logout/all", Some(second), json!({}))
            .await
            .0,
        200
    );
    assert_error(
        &server.get(WHOAMI, Some(second)).await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    assert_error(
        &server.get(WHOAMI, Some(third)).await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    assert_error(
        &server
            .post("/_matrix/client/v3/logout", None, json!({}))
            .await,
        401,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn login_and_register_are_rate_limited() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.enabled = true;
        c.rate_limits.login.burst = 3;
        c.rate_limits.login.per_second = 0.01;
        c.rate_limits.register.burst = 2;
        c.rate_limits.register.per_second = 0.01;
    })
    .await;
    server.register("gina", "pw-gina-12").await;
    for _ in 0..3 {
        assert_eq!(server.login("gina", "wrong").await.0, 403);
    }
    let limited = server.login("gina", "pw-gina-12").await;
    assert_error(&limited, 429, "M_LIMIT_EXCEEDED");
    assert!(
        limited.1["retry_after_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0),
        "{}",
        limited.1
    );

    server
        .post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": "h1"}),
        )
        .await;
    let limited = server
        .post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": "h2"}),
        )
        .await;
    assert_error(&limited, 429, "M_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn deactivated_accounts_cannot_log_in() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("ivan", "pw-ivan-12").await;
    let (status, body) = server
        .post("/_matrix/client/v3/account/deactivate", Some(&token), json!({"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "ivan"}, "password": "pw-ivan-12"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id_server_unbind_result"], "no-support");
    assert_error(
        &server.get(WHOAMI, Some(&token)).await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    assert_error(
        &server.login("ivan", "pw-ivan-12").await,
        403,
        "M_USER_DEACTIVATED",
    );
    // The name is never handed out again.
    let again = server
        .post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": "ivan", "password": "x1", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_error(&again, 400, "M_USER_IN_USE");
}
