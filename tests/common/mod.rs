//! A Myelin server started in-process on a random port with a temporary data directory, and a
//! small HTTP client for talking to it.

#![allow(dead_code)]

use myelin::Server;
use myelin::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// The config every test starts from: open registration, no rate limits, quiet logs.
pub fn test_config(dir: &std::path::Path) -> Config {
    let table: toml::Table = "server_name = \"test.local\"".parse().expect("toml");
    let mut config = Config::from_table(table, []).expect("config");
    config.listen = "127.0.0.1:0".into();
    config.data_dir = dir.to_owned();
    config.allow_registration = true;
    config.rate_limits.enabled = false;
    config
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(change: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        change(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        TestServer {
            server: Some(server),
            base,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// Sends a request; `body` is JSON unless it is `Value::Null` (no body).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, Value::Null).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, body).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, token, body).await
    }

    pub async fn delete(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, token, body).await
    }

    /// Sends raw bytes as the body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .header("content-type", "application/json")
            .send()
            .await
            .expect("sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers `name` with the dummy flow; returns (user_id, access_token, device_id).
    pub async fn register(&self, name: &str, password: &str) -> (String, String, String) {
        let (status, body) = self
            .post(
                "/_matrix/client/v3/register",
                None,
                json!({"username": name, "password": password, "auth": {"type": "m.login.dummy"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "register {name}: {body}");
        (
            body["user_id"].as_str().expect("user_id").to_owned(),
            body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            body["device_id"].as_str().expect("device_id").to_owned(),
        )
    }

    /// Logs in with a password; returns the whole response.
    pub async fn login(&self, user: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/_matrix/client/v3/login",
            None,
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}),
        )
        .await
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("clean stop");
        }
        self.dir
    }
}

/// Asserts a Matrix error response.
#[track_caller]
pub fn assert_error(response: &(StatusCode, Value), status: u16, errcode: &str) {
    assert_eq!(response.0.as_u16(), status, "status of {}", response.1);
    assert_eq!(response.1["errcode"], errcode, "errcode of {}", response.1);
    assert!(
        response.1["error"].is_string(),
        "error message in {}",
        response.1
    );
}
