//! Synapse-compatible shared-secret registration.

mod common;

use common::{TestServer, assert_error};
use myelin::service::shared_secret::mac;
use serde_json::json;

const PATH: &str = "/_synapse/admin/v1/register";

#[tokio::test]
async fn registers_admins_with_the_secret() {
    let server = TestServer::start_with(|c| {
        c.registration_shared_secret = "s3cret".into();
        c.allow_registration = false;
    })
    .await;
    let (status, body) = server.get(PATH, None).await;
    assert_eq!(status, 200);
    let nonce = body["nonce"].as_str().expect("nonce").to_owned();
    let body = json!({"nonce": nonce, "username": "root", "password": "pw-root-12", "admin": true, "displayname": "Root", "mac": mac("s3cret", &nonce, "root", "pw-root-12", true)});
    let (status, response) = server.post(PATH, None, body.clone()).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["user_id"], "@root:test.local");
    assert_eq!(response["home_server"], "test.local");
    let token = response["access_token"].as_str().expect("token");
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(token))
            .await
            .0,
        200
    );
    let services = &server.server.as_ref().expect("running").services;
    assert!(
        services
            .users
            .is_admin(&ruma::UserId::parse("@root:test.local").expect("id"))
            .expect("read")
    );

    // The nonce is spent.
    assert_error(&server.post(PATH, None, body).await, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn wrong_mac_and_bad_bodies() {
    let server = TestServer::start_with(|c| c.registration_shared_secret = "s3cret".into()).await;
    let (_, body) = server.get(PATH, None).await;
    let nonce = body["nonce"].as_str().expect("nonce").to_owned();
    // A MAC made for a non-admin does not make an admin.
    let forged = json!({"nonce": nonce, "username": "eve", "password": "pw-eve-123", "admin": true, "mac": mac("s3cret", &nonce, "eve", "pw-eve-123", false)});
    assert_error(&server.post(PATH, None, forged).await, 403, "M_FORBIDDEN");
    let (_, body) = server.get(PATH, None).await;
    let nonce = body["nonce"].as_str().expect("nonce").to_owned();
    let wrong_secret = json!({"nonce": nonce, "username": "eve", "password": "pw-eve-123", "mac": mac("guess", &nonce, "eve", "pw-eve-123", false)});
    assert_error(
        &server.post(PATH, None, wrong_secret).await,
        403,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .raw(reqwest::Method::POST, PATH, None, b"{oops".to_vec())
            .await,
        400,
        "M_NOT_JSON",
    );
    assert_error(
        &server.post(PATH, None, json!({"nonce": 1})).await,
        400,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn off_without_a_secret() {
    let server = TestServer::start().await;
    assert_error(&server.get(PATH, None).await, 400, "M_UNKNOWN");
}
