//! Versions, .well-known, capabilities, and the behaviour every endpoint shares: unknown
//! routes, wrong methods, CORS, bad bodies, legacy paths.

mod common;

use common::{TestServer, assert_error};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn versions_and_well_known() {
    let server =
        TestServer::start_with(|c| c.public_base_url = "https://matrix.test.local/".into()).await;
    let (status, body) = server.get("/_matrix/client/versions", None).await;
    assert_eq!(status, 200);
    let versions: Vec<&str> = body["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        versions.contains(&"v1.1") && versions.contains(&"r0.6.1"),
        "{body}"
    );
    // A stale token does not break /versions.
    let (status, _) = server
        .get("/_matrix/client/versions", Some("not-a-token"))
        .await;
    assert_eq!(status, 200);

    let (status, body) = server.get("/.well-known/matrix/client", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"m.homeserver": {"base_url": "https://matrix.test.local"}})
    );
}

#[tokio::test]
async fn capabilities_need_a_token_and_list_room_versions() {
    let server = TestServer::start().await;
    assert_error(
        &server.get("/_matrix/client/v3/capabilities", None).await,
        401,
        "M_MISSING_TOKEN",
    );
    let (_, token, _) = server.register("cap", "pw-cap-123").await;
    let (status, body) = server
        .get("/_matrix/client/v3/capabilities", Some(&token))
        .await;
    assert_eq!(status, 200, "{body}");
    let caps = &body["capabilities"];
    // Allowed: the spec reads an absent capability as enabled.
    for cap in ["m.change_password", "m.set_displayname", "m.set_avatar_url"] {
        assert!(
            caps[cap].is_null() || caps[cap]["enabled"] == true,
            "{caps}"
        );
    }
    assert_eq!(caps["m.3pid_changes"]["enabled"], false);
    assert_eq!(caps["m.room_versions"]["default"], "12");
    for version in ["10", "11", "12"] {
        assert_eq!(
            caps["m.room_versions"]["available"][version], "stable",
            "{caps}"
        );
    }
    // The r0 path of the same endpoint works too.
    let (status, _) = server
        .get("/_matrix/client/r0/capabilities", Some(&token))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_unrecognized() {
    let server = TestServer::start().await;
    assert_error(
        &server
            .get("/_matrix/client/v3/no/such/endpoint", None)
            .await,
        404,
        "M_UNRECOGNIZED",
    );
    assert_error(&server.get("/nothing", None).await, 404, "M_UNRECOGNIZED");
    let response = server
        .request(
            Method::PATCH,
            "/_matrix/client/v3/login",
            None,
            serde_json::Value::Null,
        )
        .await;
    assert_error(&response, 405, "M_UNRECOGNIZED");
    let response = server
        .request(
            Method::DELETE,
            "/_matrix/client/versions",
            None,
            serde_json::Value::Null,
        )
        .await;
    assert_error(&response, 405, "M_UNRECOGNIZED");
}

#[tokio::test]
async fn cors_headers_and_options() {
    let server = TestServer::start().await;
    for method in [Method::OPTIONS, Method::GET] {
        let response = server
            .http
            .request(
                method.clone(),
                format!("{}/_matrix/client/v3/account/whoami", server.base),
            )
            .header("Origin", "https://app.element.io")
            .header("Access-Control-Request-Method", "GET")
            .send()
            .await
            .expect("sent");
        if method == Method::OPTIONS {
            assert!(response.status().is_success(), "{}", response.status());
        } else {
            assert_eq!(response.status(), 401);
        }
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(
            headers["access-control-allow-methods"]
                .to_str()
                .expect("ascii")
                .contains("PUT")
        );
        assert!(
            headers["access-control-allow-headers"]
                .to_str()
                .expect("ascii")
                .contains("Authorization")
        );
    }
}

#[tokio::test]
async fn bad_bodies_get_matrix_errors() {
    let server = TestServer::start_with(|c| c.max_request_size = 4096).await;
    let path = "/_matrix/client/v3/login";
    assert_error(
        &server
            .raw(Method::POST, path, None, b"{not json".to_vec())
            .await,
        400,
        "M_NOT_JSON",
    );
    assert_error(
        &server
            .raw(Method::POST, path, None, b"\xff\xfe".to_vec())
            .await,
        400,
        "M_NOT_JSON",
    );
    assert_error(
        &server
            .raw(Method::POST, path, None, b"[1,2,3]".to_vec())
            .await,
        400,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .post(
                path,
                None,
                json!({"type": "m.login.password", "password": 5}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    let huge = format!("{{\"password\": \"{}\"}}", "x".repeat(10_000));
    assert_error(
        &server
            .raw(Method::POST, path, None, huge.into_bytes())
            .await,
        413,
        "M_TOO_LARGE",
    );

    // A body sent in chunks with no Content-Length is limited all the same.
    let chunks = futures_chunks(10_000);
    let response = server
        .http
        .post(format!("{}{path}", server.base))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["errcode"], "M_TOO_LARGE");
}

fn futures_chunks(
    total: usize,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunk = vec![b' '; 1000];
    futures_util::stream::iter((0..total / 1000).map(move |_| Ok(chunk.clone())))
}

#[tokio::test]
async fn bad_path_parameters_are_invalid_params() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("paths", "pw-paths-1").await;
    // A device id is any string, but the request still needs a body of the right shape.
    let response = server
        .put(
            "/_matrix/client/v3/devices/%20",
            Some(&token),
            json!({"display_name": 3}),
        )
        .await;
    assert_error(&response, 400, "M_BAD_JSON");
}

/// The probes Element makes for features Myelin does not offer (OAuth, dehydrated devices):
/// a clean 404 `M_UNRECOGNIZED`, which tells the client the feature is absent.
#[tokio::test]
async fn absent_features_answer_unrecognized() {
    let server = TestServer::start().await;
    let (_, token, _) = server.register("alice", "pw-alice-1").await;
    for path in [
        "/_matrix/client/unstable/org.matrix.msc2965/auth_issuer",
        "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata",
        "/_matrix/client/v1/auth_metadata",
        "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device",
    ] {
        assert_error(&server.get(path, Some(&token)).await, 404, "M_UNRECOGNIZED");
    }
}
