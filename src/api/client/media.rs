//! The media repository's HTTP side: uploads (`/_matrix/media/v3/upload`, the `/v1/create` +
//! `PUT` pair), authenticated downloads and thumbnails (`/_matrix/client/v1/media/...`), the
//! legacy unauthenticated ones (only for media older than the configured cut-over), config and
//! link previews.
//!
//! Uploads and downloads take the raw body or file stream rather than a ruma type, which would
//! hold the whole file in memory.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use http::{HeaderMap, HeaderValue, header};
use ruma::api::client::authenticated_media::{get_media_config, get_media_preview};
use ruma::api::client::media::{
    create_mxc_uri, get_media_config as legacy_config, get_media_preview as legacy_preview,
};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedMxcUri, UInt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

use crate::api::extract::Path;
use crate::api::ruma::{AppState, Authenticated, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::media::thumbnail::Method;
use crate::service::media::{Content, valid_media_id};

/// Types a browser renders without running script; anything else is served as an attachment
/// (the spec's list for `Content-Disposition: inline`).
const INLINE_TYPES: &[&str] = &[
    "text/css",
    "text/plain",
    "text/csv",
    "application/json",
    "application/ld+json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

/// Bytes read from disk per chunk of a download (the default 4 KiB costs a syscall and a
/// frame per 4 KiB).
const STREAM_CHUNK: usize = 64 * 1024;

/// The spec's recommended policy: uploaded HTML or SVG cannot run script on our origin.
const CSP: &str = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; \
                   style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    let router = router
        .ruma(create)
        .ruma(config)
        .ruma(config_legacy)
        .ruma(preview)
        .ruma(preview_legacy);
    let mut router = router
        .route(
            "/_matrix/client/v1/media/download/{server}/{media}",
            get(download),
        )
        .route(
            "/_matrix/client/v1/media/download/{server}/{media}/{filename}",
            get(download_as),
        )
        .route(
            "/_matrix/client/v1/media/thumbnail/{server}/{media}",
            get(thumbnail),
        );
    for version in ["r0", "v3", "v1"] {
        router = router.route(&format!("/_matrix/media/{version}/upload"), post(upload));
    }
    for version in ["r0", "v3"] {
        router = router
            .route(
                &format!("/_matrix/media/{version}/upload/{{server}}/{{media}}"),
                put(upload_to),
            )
            .route(
                &format!("/_matrix/media/{version}/download/{{server}}/{{media}}"),
                get(legacy_download),
            )
            .route(
                &format!("/_matrix/media/{version}/download/{{server}}/{{media}}/{{filename}}"),
                get(legacy_download_as),
            )
            .route(
                &format!("/_matrix/media/{version}/thumbnail/{{server}}/{{media}}"),
                get(legacy_thumbnail),
            );
    }
    router
}

#[derive(Deserialize)]
struct UploadQuery {
    filename: Option<String>,
}

async fn upload(
    State(services): State<AppState>,
    Authenticated(identity): Authenticated,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Value>> {
    let id = receive(&services, &identity.user_id, None, query, &headers, body).await?;
    let uri = format!("mxc://{}/{id}", services.server_name);
    Ok(axum::Json(json!({ "content_uri": uri })))
}

async fn upload_to(
    State(services): State<AppState>,
    Authenticated(identity): Authenticated,
    Path((server, media)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Value>> {
    check_ids(&server, &media)?;
    if server != services.server_name.as_str() {
        return Err(Error::forbidden(
            "Media ids of other servers cannot be uploaded to",
        ));
    }
    receive(
        &services,
        &identity.user_id,
        Some(&media),
        query,
        &headers,
        body,
    )
    .await?;
    Ok(axum::Json(json!({})))
}

async fn receive(
    services: &Services,
    user: &ruma::UserId,
    into: Option<&str>,
    query: UploadQuery,
    headers: &HeaderMap,
    body: Body,
) -> Result<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    services
        .media
        .upload(
            user,
            into,
            content_type,
            query.filename,
            declared,
            body.into_data_stream(),
        )
        .await
}

async fn create(
    State(services): State<AppState>,
    request: Ruma<create_mxc_uri::v1::Request>,
) -> Result<create_mxc_uri::v1::Response> {
    let user = &request.identity()?.user_id;
    let (id, expires) = services.media.create_pending(user)?;
    let uri = OwnedMxcUri::from(format!("mxc://{}/{id}", services.server_name));
    let mut response = create_mxc_uri::v1::Response::new(uri);
    response.unused_expires_at = UInt::new(expires).map(MilliSecondsSinceUnixEpoch);
    Ok(response)
}

fn upload_size(services: &Services) -> UInt {
    UInt::new(services.media.config().max_upload_size).unwrap_or(UInt::MAX)
}

async fn config(
    State(services): State<AppState>,
    _request: Ruma<get_media_config::v1::Request>,
) -> Result<get_media_config::v1::Response> {
    Ok(get_media_config::v1::Response::new(upload_size(&services)))
}

// The deprecated legacy path is still what older clients call.
#[allow(deprecated)]
async fn config_legacy(
    State(services): State<AppState>,
    _request: Ruma<legacy_config::v3::Request>,
) -> Result<legacy_config::v3::Response> {
    Ok(legacy_config::v3::Response::new(upload_size(&services)))
}

async fn preview_data(
    services: &Services,
    user: &ruma::UserId,
    url: &str,
) -> Result<Box<serde_json::value::RawValue>> {
    let data = services
        .media
        .preview(user, services.server_name.as_str(), url)
        .await?;
    serde_json::value::to_raw_value(&data).map_err(Error::internal)
}

async fn preview(
    State(services): State<AppState>,
    request: Ruma<get_media_preview::v1::Request>,
) -> Result<get_media_preview::v1::Response> {
    let user = &request.identity()?.user_id;
    let mut response = get_media_preview::v1::Response::new();
    response.data = Some(preview_data(&services, user, &request.body.url).await?);
    Ok(response)
}

// The deprecated legacy path is still what older clients call.
#[allow(deprecated)]
async fn preview_legacy(
    State(services): State<AppState>,
    request: Ruma<legacy_preview::v3::Request>,
) -> Result<legacy_preview::v3::Response> {
    let user = &request.identity()?.user_id;
    let mut response = legacy_preview::v3::Response::new();
    response.data = Some(preview_data(&services, user, &request.body.url).await?);
    Ok(response)
}

/// The server name must be one, and the media id made of `[A-Za-z0-9_-]` (no path tricks).
fn check_ids(server: &str, media: &str) -> Result<()> {
    if ruma::ServerName::parse(server).is_err() {
        return Err(Error::invalid_param(format!(
            "`{server}` is not a server name"
        )));
    }
    if !valid_media_id(media) {
        return Err(Error::invalid_param(format!("`{media}` is not a media id")));
    }
    Ok(())
}

/// `timeout_ms` from the query: how long to wait for media still being uploaded.
fn wait_of(query: &HashMap<String, String>) -> Result<Option<Duration>> {
    query
        .get("timeout_ms")
        .map(|ms| {
            ms.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| Error::invalid_param("timeout_ms must be a number"))
        })
        .transpose()
}

/// A local media's stored file; media of other servers would need federation (not yet).
async fn local_content(
    services: &Services,
    server: &str,
    media: &str,
    query: &HashMap<String, String>,
) -> Result<Content> {
    check_ids(server, media)?;
    if server != services.server_name.as_str() {
        return Err(Error::not_found(
            "Media from other servers is not available yet",
        ));
    }
    services.media.content(media, wait_of(query)?).await
}

async fn download(
    State(services): State<AppState>,
    Authenticated(_): Authenticated,
    Path((server, media)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let content = local_content(&services, &server, &media, &query).await?;
    serve(content, None).await
}

async fn download_as(
    State(services): State<AppState>,
    Authenticated(_): Authenticated,
    Path((server, media, filename)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let content = local_content(&services, &server, &media, &query).await?;
    serve(content, Some(filename)).await
}

async fn thumbnail(
    State(services): State<AppState>,
    Authenticated(_): Authenticated,
    Path((server, media)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    make_thumbnail(&services, &server, &media, &query).await
}

async fn make_thumbnail(
    services: &Services,
    server: &str,
    media: &str,
    query: &HashMap<String, String>,
) -> Result<Response> {
    check_ids(server, media)?;
    let dimension = |name: &str| -> Result<u32> {
        query
            .get(name)
            .ok_or_else(|| Error::invalid_param(format!("{name} is required")))?
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::invalid_param(format!("{name} must be a positive integer")))
    };
    let (width, height) = (dimension("width")?, dimension("height")?);
    let method = match query.get("method").map(String::as_str) {
        None | Some("scale") => Method::Scale,
        Some("crop") => Method::Crop,
        Some(other) => {
            return Err(Error::invalid_param(format!("Unknown method `{other}`")));
        }
    };
    if server != services.server_name.as_str() {
        return Err(Error::not_found(
            "Media from other servers is not available yet",
        ));
    }
    let content = services
        .media
        .thumbnail(media, width, height, method, wait_of(query)?)
        .await?;
    serve(content, None).await
}

/// Legacy endpoints serve only media from before the configured cut-over.
fn legacy_allowed(services: &Services, media: &str) -> Result<()> {
    let cutoff = services.media.config().legacy_unauthenticated_before_ms;
    let old_enough = services
        .media
        .record(media)?
        .is_some_and(|record| record.created_ms < cutoff);
    if old_enough {
        Ok(())
    } else {
        Err(Error::not_found(
            "Unknown media (new media is served only on the authenticated /_matrix/client/v1/media endpoints)",
        ))
    }
}

async fn legacy_download(
    State(services): State<AppState>,
    Path((server, media)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    check_ids(&server, &media)?;
    legacy_allowed(&services, &media)?;
    let content = local_content(&services, &server, &media, &query).await?;
    serve(content, None).await
}

async fn legacy_download_as(
    State(services): State<AppState>,
    Path((server, media, filename)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    check_ids(&server, &media)?;
    legacy_allowed(&services, &media)?;
    let content = local_content(&services, &server, &media, &query).await?;
    serve(content, Some(filename)).await
}

async fn legacy_thumbnail(
    State(services): State<AppState>,
    Path((server, media)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    check_ids(&server, &media)?;
    legacy_allowed(&services, &media)?;
    make_thumbnail(&services, &server, &media, &query).await
}

/// Streams a stored file with headers that keep browsers from running it as a page.
async fn serve(content: Content, filename: Option<String>) -> Result<Response> {
    let file = tokio::fs::File::open(&content.path).await.map_err(|e| {
        tracing::error!(path = %content.path.display(), %e, "media file missing");
        Error::not_found("The media's file is missing")
    })?;
    let content_type = content
        .content_type
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let disposition = if INLINE_TYPES.contains(&essence.as_str()) {
        "inline"
    } else {
        "attachment"
    };
    let disposition = match filename.or(content.filename) {
        Some(name) => format!("{disposition}; {}", filename_parameter(&name)),
        None => disposition.to_owned(),
    };
    let stream = tokio_util::io::ReaderStream::with_capacity(file, STREAM_CHUNK);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    let header_value = |value: &str| {
        HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, header_value(&content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content.size));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    Ok(response)
}

/// `filename="…"` for plain ASCII names, RFC 6266's `filename*=utf-8''…` otherwise.
fn filename_parameter(name: &str) -> String {
    let plain = name
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        format!("filename=\"{name}\"")
    } else {
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("filename*=utf-8''{encoded}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_quoted_or_encoded() {
        assert_eq!(filename_parameter("cat.png"), "filename=\"cat.png\"");
        assert_eq!(filename_parameter("a\"b.txt"), "filename*=utf-8''a%22b.txt");
        assert_eq!(filename_parameter("é.txt"), "filename*=utf-8''%C3%A9.txt");
    }
}
