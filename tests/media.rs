//! The media repository over HTTP: uploads, authenticated downloads, legacy endpoints,
//! the async create/upload pair, size limits, thumbnails and link previews.

mod common;

use common::{TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Cursor;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const MEDIA: &str = "/_matrix/media/v3";
const V1: &str = "/_matrix/client/v1/media";

async fn upload(
    server: &TestServer,
    token: &str,
    bytes: Vec<u8>,
    content_type: &str,
    filename: Option<&str>,
) -> (StatusCode, Value) {
    let query = filename
        .map(|f| format!("?filename={f}"))
        .unwrap_or_default();
    let response = server
        .http
        .post(format!("{}{MEDIA}/upload{query}", server.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `mxc://server/id` → `server/id`.
fn media_path(uri: &Value) -> String {
    uri.as_str()
        .and_then(|u| u.strip_prefix("mxc://"))
        .expect("mxc uri")
        .to_owned()
}

async fn fetch(server: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = server.http.get(format!("{}{path}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("sent")
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("png");
    bytes
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("format")
        .into_dimensions()
        .expect("an image")
}

fn stored_files(server: &TestServer) -> usize {
    let root = server.dir.path().join("media");
    std::fs::read_dir(&root)
        .expect("media dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() != "tmp")
        .map(|entry| std::fs::read_dir(entry.path()).map_or(0, |dir| dir.count()))
        .sum()
}

#[tokio::test]
async fn upload_and_download_byte_identical_with_safe_headers() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let text = b"hello, media".to_vec();
    let (status, body) = upload(
        &server,
        &alice,
        text.clone(),
        "text/plain",
        Some("note.txt"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let path = media_path(&body["content_uri"]);
    assert!(path.starts_with("test.local/"));

    let response = fetch(&server, &format!("{V1}/download/{path}"), Some(&bob)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(
        headers["content-disposition"],
        "inline; filename=\"note.txt\""
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("sandbox")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), text);

    // A file name in the path wins; HTML is never served inline.
    let (_, html) = upload(
        &server,
        &alice,
        b"<script>alert(1)</script>".to_vec(),
        "text/html",
        None,
    )
    .await;
    let html_path = media_path(&html["content_uri"]);
    let response = fetch(
        &server,
        &format!("{V1}/download/{html_path}/page.html"),
        Some(&bob),
    )
    .await;
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"page.html\""
    );

    // The same bytes again: a new media id, one file on disk.
    let files = stored_files(&server);
    let (_, again) = upload(&server, &bob, text.clone(), "text/plain", None).await;
    assert_ne!(again["content_uri"], body["content_uri"]);
    assert_eq!(stored_files(&server), files);

    // Authentication is required on the v1 endpoints.
    assert_error(
        &error_of(fetch(&server, &format!("{V1}/download/{path}"), None).await).await,
        401,
        "M_MISSING_TOKEN",
    );
    assert_error(
        &error_of(
            fetch(
                &server,
                &format!("{V1}/thumbnail/{path}?width=32&height=32"),
                None,
            )
            .await,
        )
        .await,
        401,
        "M_MISSING_TOKEN",
    );
    assert_error(
        &error_of(fetch(&server, &format!("{V1}/config"), None).await).await,
        401,
        "M_MISSING_TOKEN",
    );
    let response = server
        .http
        .post(format!("{}{MEDIA}/upload", server.base))
        .body("x")
        .send()
        .await
        .expect("sent");
    assert_error(&error_of(response).await, 401, "M_MISSING_TOKEN");

    // The legacy unauthenticated endpoints serve nothing new by default.
    assert_error(
        &error_of(fetch(&server, &format!("{MEDIA}/download/{path}"), None).await).await,
        404,
        "M_NOT_FOUND",
    );
    // Unknown media, bad ids and bad server names.
    assert_error(
        &error_of(
            fetch(
                &server,
                &format!("{V1}/download/test.local/nosuchmedia"),
                Some(&bob),
            )
            .await,
        )
        .await,
        404,
        "M_NOT_FOUND",
    );
    assert_error(
        &error_of(
            fetch(
                &server,
                &format!("{V1}/download/test.local/bad!id"),
                Some(&bob),
            )
            .await,
        )
        .await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &error_of(
            fetch(
                &server,
                &format!("{V1}/download/bad_server!/abc"),
                Some(&bob),
            )
            .await,
        )
        .await,
        400,
        "M_INVALID_PARAM",
    );
    // A media id that does not decode as UTF-8 gets a Matrix error too.
    assert_error(
        &error_of(
            fetch(
                &server,
                &format!("{V1}/download/test.local/%FF"),
                Some(&bob),
            )
            .await,
        )
        .await,
        400,
        "M_INVALID_PARAM",
    );
    // An empty upload is a valid (empty) file.
    let (status, empty) = upload(&server, &alice, Vec::new(), "text/plain", None).await;
    assert_eq!(status, 200);
    let response = fetch(
        &server,
        &format!("{V1}/download/{}", media_path(&empty["content_uri"])),
        Some(&alice),
    )
    .await;
    assert_eq!(response.bytes().await.expect("bytes").len(), 0);
}

#[tokio::test]
async fn legacy_endpoints_serve_media_from_before_the_cut_over() {
    let server = TestServer::start_with(|config| {
        config.media.legacy_unauthenticated_before_ms = u64::MAX;
    })
    .await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, body) = upload(&server, &alice, b"old".to_vec(), "text/plain", None).await;
    let path = media_path(&body["content_uri"]);
    let response = fetch(&server, &format!("{MEDIA}/download/{path}"), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), b"old");
    let response = fetch(
        &server,
        &format!("/_matrix/media/r0/download/{path}/x.txt"),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn size_limit_and_a_lying_content_length() {
    let server = TestServer::start_with(|config| config.media.max_upload_size = 1000).await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (status, config) = server.get(&format!("{V1}/config"), Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(config["m.upload.size"], 1000);
    let (_, legacy) = server.get(&format!("{MEDIA}/config"), Some(&alice)).await;
    assert_eq!(legacy["m.upload.size"], 1000);
    let response = upload(
        &server,
        &alice,
        vec![7; 1001],
        "application/octet-stream",
        None,
    )
    .await;
    assert_error(&response, 413, "M_TOO_LARGE");
    // Chunked, so the size is only known while streaming.
    let chunks = futures_util::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 400]))),
    );
    let response = server
        .http
        .post(format!("{}{MEDIA}/upload", server.base))
        .bearer_auth(&alice)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("sent");
    assert_error(&error_of(response).await, 413, "M_TOO_LARGE");

    // A body shorter than its Content-Length: the connection ends early, nothing is stored.
    let files = stored_files(&server);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let request = format!(
        "POST {MEDIA}/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: text/plain\r\nContent-Length: 500\r\n\r\nonly a few bytes"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    assert_eq!(stored_files(&server), files);
    // The server is fine afterwards.
    let (status, _) = upload(&server, &alice, b"fine".to_vec(), "text/plain", None).await;
    assert_eq!(status, 200);
    let temp = std::fs::read_dir(server.dir.path().join("media/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(temp, 0, "no temporary files left behind");
}

#[tokio::test]
async fn create_then_upload_later() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let (status, created) = server
        .post("/_matrix/media/v1/create", Some(&alice), json!({}))
        .await;
    assert_eq!(status, 200, "{created}");
    assert!(created["unused_expires_at"].as_u64().is_some());
    let path = media_path(&created["content_uri"]);

    // Not uploaded yet: a short wait ends in 504 M_NOT_YET_UPLOADED.
    let response = fetch(
        &server,
        &format!("{V1}/download/{path}?timeout_ms=100"),
        Some(&bob),
    )
    .await;
    assert_error(&error_of(response).await, 504, "M_NOT_YET_UPLOADED");

    // A download waiting for the upload gets it when it lands.
    let waiting = {
        let http = server.http.clone();
        let url = format!("{}{V1}/download/{path}?timeout_ms=10000", server.base);
        let bob = bob.clone();
        tokio::spawn(async move {
            let response = http.get(url).bearer_auth(bob).send().await.expect("sent");
            (response.status(), response.bytes().await.expect("bytes"))
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    let put = |token: &str, body: &'static [u8]| {
        server
            .http
            .put(format!(
                "{}{MEDIA}/upload/{path}?filename=late.bin",
                server.base
            ))
            .bearer_auth(token.to_owned())
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let response = put(&bob, b"not yours").await.expect("sent");
    assert_error(&error_of(response).await, 403, "M_FORBIDDEN");
    let response = put(&alice, b"late bytes").await.expect("sent");
    assert_eq!(response.status(), 200);
    let response = put(&alice, b"again").await.expect("sent");
    assert_error(&error_of(response).await, 409, "M_CANNOT_OVERWRITE_MEDIA");

    let (status, bytes) = waiting.await.expect("waiting download");
    assert_eq!(status, 200);
    assert_eq!(bytes.as_ref(), b"late bytes");
}

#[tokio::test]
async fn thumbnails_have_the_right_dimensions_and_bad_input_gets_errors() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let (_, body) = upload(
        &server,
        &alice,
        png(1000, 500),
        "image/png",
        Some("wide.png"),
    )
    .await;
    let path = media_path(&body["content_uri"]);
    let thumbnail = |query: &str| {
        let url = format!("{V1}/thumbnail/{path}?{query}");
        let (server, alice) = (&server, &alice);
        async move { fetch(server, &url, Some(alice)).await }
    };

    let response = thumbnail("width=96&height=96&method=crop").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .expect("disposition")
            .starts_with("inline")
    );
    assert_eq!(
        dimensions(&response.bytes().await.expect("bytes")),
        (96, 96)
    );

    let response = thumbnail("width=300&height=200&method=scale").await;
    // Rounded up to 320x240, scaled to fit: 320x160 for a 2:1 image.
    assert_eq!(
        dimensions(&response.bytes().await.expect("bytes")),
        (320, 160)
    );
    // Cached: the same again.
    let response = thumbnail("width=300&height=200&method=scale").await;
    assert_eq!(
        dimensions(&response.bytes().await.expect("bytes")),
        (320, 160)
    );
    // Larger than any thumbnail size: the original, never upscaled.
    let response = thumbnail("width=2000&height=2000").await;
    assert_eq!(
        dimensions(&response.bytes().await.expect("bytes")),
        (1000, 500)
    );
    let (_, small) = upload(&server, &alice, png(20, 10), "image/png", None).await;
    let small = media_path(&small["content_uri"]);
    let response = fetch(
        &server,
        &format!("{V1}/thumbnail/{small}?width=96&height=96"),
        Some(&alice),
    )
    .await;
    assert_eq!(
        dimensions(&response.bytes().await.expect("bytes")),
        (20, 10)
    );

    // A JPEG source gives a JPEG thumbnail.
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(400, 400, image::Rgb([10, 20, 30]))
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .expect("jpeg");
    let (_, photo) = upload(&server, &alice, jpeg, "image/jpeg", None).await;
    let photo = media_path(&photo["content_uri"]);
    let response = fetch(
        &server,
        &format!("{V1}/thumbnail/{photo}?width=32&height=32&method=crop"),
        Some(&alice),
    )
    .await;
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(
        dimensions(&response.bytes().await.expect("bytes")),
        (32, 32)
    );

    assert_error(
        &error_of(thumbnail("width=abc&height=10").await).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &error_of(thumbnail("height=10").await).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_error(
        &error_of(thumbnail("width=10&height=10&method=stretch").await).await,
        400,
        "M_INVALID_PARAM",
    );
    // Not an image, and a corrupt one: the spec's 400, never a 500.
    let (_, text) = upload(&server, &alice, b"plain text".to_vec(), "text/plain", None).await;
    let text = media_path(&text["content_uri"]);
    let response = fetch(
        &server,
        &format!("{V1}/thumbnail/{text}?width=32&height=32"),
        Some(&alice),
    )
    .await;
    assert_error(&error_of(response).await, 400, "M_UNKNOWN");
    let mut corrupt = png(100, 100);
    corrupt.truncate(60);
    corrupt.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef].repeat(50));
    let (_, broken) = upload(&server, &alice, corrupt, "image/png", None).await;
    let broken = media_path(&broken["content_uri"]);
    let response = fetch(
        &server,
        &format!("{V1}/thumbnail/{broken}?width=32&height=32"),
        Some(&alice),
    )
    .await;
    assert_error(&error_of(response).await, 400, "M_UNKNOWN");
    let response = fetch(
        &server,
        &format!("{V1}/thumbnail/test.local/unknown?width=32&height=32"),
        Some(&alice),
    )
    .await;
    assert_error(&error_of(response).await, 404, "M_NOT_FOUND");
}

/// A small web site on loopback: a page with OpenGraph tags and an image, a redirect to an
/// address outside the allow-list, and a plain page with only a title.
async fn start_site() -> std::net::SocketAddr {
    use axum::response::{Html, IntoResponse, Redirect};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let port = address.port();
    let site = axum::Router::new()
        .route(
            "/page",
            get(|| async {
                Html(
                    r#"<html><head><title>Ignored title</title>
                    <meta property="og:title" content="A test page">
                    <meta property="og:description" content="Served on loopback">
                    <meta property="og:image" content="/picture.png"></head><body>hi</body></html>"#,
                )
            }),
        )
        .route(
            "/plain",
            get(|| async { Html("<html><head><title> Just a title </title></head></html>") }),
        )
        .route(
            "/picture.png",
            get(|| async { ([("content-type", "image/png")], png(64, 48)).into_response() }),
        )
        .route(
            "/redirect",
            get(move || async move { Redirect::temporary(&format!("http://127.0.0.2:{port}/page")) }),
        );
    tokio::spawn(async move { axum::serve(listener, site).await });
    address
}

#[tokio::test]
async fn link_previews_of_allowed_and_refused_addresses() {
    let site = start_site().await;
    let server = TestServer::start_with(|config| {
        config.media.url_preview.allowed_networks = vec!["127.0.0.1/32".to_owned()];
        config.media.url_preview.timeout_ms = 3000;
    })
    .await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    let preview = |url: String| {
        let path = format!("{V1}/preview_url?url={}", urlencode(&url));
        let server = &server;
        let alice = alice.clone();
        async move { server.get(&path, Some(&alice)).await }
    };

    let (status, page) = preview(format!("http://{site}/page")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["og:title"], "A test page");
    assert_eq!(page["og:description"], "Served on loopback");
    assert_eq!(page["og:image:width"], 64);
    assert_eq!(page["og:image:height"], 48);
    assert_eq!(page["og:image:type"], "image/png");
    // The preview image is stored as media the user can download.
    let image = media_path(&page["og:image"]);
    let response = fetch(&server, &format!("{V1}/download/{image}"), Some(&alice)).await;
    assert_eq!(
        dimensions(&response.bytes().await.expect("bytes")),
        (64, 48)
    );
    let (status, plain) = preview(format!("http://{site}/plain")).await;
    assert_eq!(status, 200);
    assert_eq!(plain["og:title"], "Just a title");

    // The legacy path answers too.
    let path = format!(
        "{MEDIA}/preview_url?url={}",
        urlencode(&format!("http://{site}/plain"))
    );
    assert_eq!(server.get(&path, Some(&alice)).await.0, 200);

    // A redirect to an address outside the allow-list is refused, as is a name resolving to one.
    let (status, body) = preview(format!("http://{site}/redirect")).await;
    assert_error(&(status, body), 403, "M_FORBIDDEN");
    let (status, body) = preview(format!("http://localhost:{}/page", site.port())).await;
    // `localhost` may resolve to ::1 (refused) or 127.0.0.1 (allowed here).
    assert!(status == 200 || status == 403, "{status} {body}");
    // Unreachable: an error without a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let (status, body) = preview(format!("http://{closed}/")).await;
    assert_error(&(status, body), 502, "M_UNKNOWN");
    let (status, body) = preview("not a url".to_owned()).await;
    assert_error(&(status, body), 400, "M_INVALID_PARAM");
    let (status, body) = preview("file:///etc/passwd".to_owned()).await;
    assert_error(&(status, body), 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn previews_refuse_loopback_and_private_addresses_by_default() {
    let site = start_site().await;
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    for url in [
        format!("http://{site}/page"),
        format!("http://localhost:{}/page", site.port()),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/".to_owned(),
    ] {
        let path = format!("{V1}/preview_url?url={}", urlencode(&url));
        let response = server.get(&path, Some(&alice)).await;
        assert_error(&response, 403, "M_FORBIDDEN");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
