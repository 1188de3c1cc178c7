//! Link previews: fetch a page, read its OpenGraph tags (or `<title>` and description), store
//! its preview image as media, and cache the result per URL.
//!
//! The server must not become a way into its own network: every address a fetch connects to,
//! after DNS resolution and on every redirect, must be public unless the config allows its
//! network. Literal IP hosts never reach the resolver, so they are checked separately.

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::Duration;

use super::Media;
use crate::config::UrlPreviewConfig;
use crate::error::{Error, Result};
use crate::service::outbound::{self, Blocked, Guard};
use crate::service::users::now_ms;
use ruma::UserId;

/// How long a cached preview is served before the page is fetched again.
const CACHE_MS: u64 = 60 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct Cached {
    preview: Map<String, Value>,
    fetched_ms: u64,
}

pub struct Previewer {
    client: reqwest::Client,
    guard: Guard,
    max_size: u64,
}

impl Previewer {
    pub fn new(config: &UrlPreviewConfig) -> Result<Previewer> {
        let (client, guard) = outbound::client(
            &config.allowed_networks,
            Duration::from_millis(config.timeout_ms),
            "URL preview",
        )?;
        Ok(Previewer {
            client,
            guard,
            max_size: config.max_page_size,
        })
    }

    /// Fetches up to `max_size` bytes of `url`. Returns the final URL, content type and bytes.
    async fn fetch(&self, url: &reqwest::Url) -> Result<(reqwest::Url, String, Vec<u8>)> {
        self.guard.check_url(url).map_err(blocked)?;
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(fetch_error)?;
        if !response.status().is_success() {
            return Err(unreachable(format!(
                "the page answered {}",
                response.status()
            )));
        }
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(fetch_error)?;
            let room = (self.max_size as usize).saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() as u64 >= self.max_size {
                break;
            }
        }
        Ok((final_url, content_type, body))
    }
}

impl Media {
    /// The preview of `url` (cached for an hour), fetched on behalf of `user`.
    pub async fn preview(&self, user: &UserId, server_name: &str, url: &str) -> Result<Value> {
        let Some(previewer) = &self.previewer else {
            return Err(Error::unrecognized(
                http::StatusCode::NOT_FOUND,
                "URL previews are turned off on this server",
            ));
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Error::invalid_param(format!("Invalid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid_param(
                "Only http and https URLs can be previewed",
            ));
        }
        let table = self.db.table(crate::storage::Cf::UrlPreviews);
        if let Some(cached) = table.get_json::<Cached>(parsed.as_str())?
            && now_ms().saturating_sub(cached.fetched_ms) < CACHE_MS
        {
            return Ok(Value::Object(cached.preview));
        }
        let (final_url, content_type, body) = previewer.fetch(&parsed).await?;
        let mut preview = Map::new();
        if content_type.starts_with("text/html") || content_type.starts_with("application/xhtml") {
            let page = String::from_utf8_lossy(&body);
            let (tags, image) = read_page(&page, &final_url);
            preview = tags;
            if let Some(image_url) = image
                && let Ok((_, image_type, bytes)) = previewer.fetch(&image_url).await
                && image_type.starts_with("image/")
            {
                self.add_image(&mut preview, user, server_name, image_type, bytes)
                    .await?;
            }
        } else if content_type.starts_with("image/") {
            self.add_image(&mut preview, user, server_name, content_type, body)
                .await?;
        }
        table.put_json(
            parsed.as_str(),
            &Cached {
                preview: preview.clone(),
                fetched_ms: now_ms(),
            },
        )?;
        Ok(Value::Object(preview))
    }

    /// Stores a preview image as media and describes it with `og:image*` keys.
    async fn add_image(
        &self,
        preview: &mut Map<String, Value>,
        user: &UserId,
        server_name: &str,
        content_type: String,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let dimensions = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .ok()
            .and_then(|reader| reader.into_dimensions().ok());
        let size = bytes.len();
        let content_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let id = self
            .store_generated(user, bytes, content_type.clone())
            .await?;
        preview.insert(
            "og:image".into(),
            json!(format!("mxc://{server_name}/{id}")),
        );
        preview.insert("og:image:type".into(), json!(content_type));
        preview.insert("matrix:image:size".into(), json!(size));
        if let Some((width, height)) = dimensions {
            preview.insert("og:image:width".into(), json!(width));
            preview.insert("og:image:height".into(), json!(height));
        }
        Ok(())
    }
}

/// The page's `og:*` tags, with `<title>` and the description meta tag as fallbacks, and the
/// preview image's absolute URL.
fn read_page(page: &str, base: &reqwest::Url) -> (Map<String, Value>, Option<reqwest::Url>) {
    let document = scraper::Html::parse_document(page);
    let mut tags = Map::new();
    if let Ok(meta) = scraper::Selector::parse("meta") {
        for element in document.select(&meta) {
            let element = element.value();
            let key = element
                .attr("property")
                .or_else(|| element.attr("name"))
                .unwrap_or_default();
            let Some(content) = element.attr("content") else {
                continue;
            };
            if key.starts_with("og:") {
                tags.entry(key.to_owned())
                    .or_insert_with(|| json!(content.trim()));
            } else if key.eq_ignore_ascii_case("description") {
                tags.entry("og:description".to_owned())
                    .or_insert_with(|| json!(content.trim()));
            }
        }
    }
    if !tags.contains_key("og:title")
        && let Ok(title) = scraper::Selector::parse("title")
        && let Some(element) = document.select(&title).next()
    {
        let text: String = element.text().collect();
        tags.insert("og:title".into(), json!(text.trim()));
    }
    let image = tags
        .remove("og:image")
        .and_then(|v| v.as_str().and_then(|src| base.join(src).ok()));
    // Tags about the page's own image are replaced by ours.
    tags.retain(|key, _| !key.starts_with("og:image"));
    (tags, image)
}

fn blocked(err: Blocked) -> Error {
    Error::forbidden(format!("Cannot preview this URL: {err}"))
}

fn unreachable(message: String) -> Error {
    Error::new(
        http::StatusCode::BAD_GATEWAY,
        ruma::api::error::ErrorKind::Unknown,
        format!("Could not fetch the URL: {message}"),
    )
}

/// A refused address anywhere in the error chain is a 403; anything else is unreachable.
fn fetch_error(err: reqwest::Error) -> Error {
    if let Some(found) = outbound::blocked_cause(&err) {
        return Error::forbidden(format!("Cannot preview this URL: {found}"));
    }
    if err.is_timeout() {
        return unreachable("it took too long".to_owned());
    }
    unreachable(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tags_with_fallbacks() {
        let base = reqwest::Url::parse("http://example.org/a/page").expect("url");
        let page = r#"<html><head><title> The title </title>
            <meta name="description" content="About it">
            <meta property="og:image" content="/img.png">
            <meta property="og:site_name" content="Site"></head></html>"#;
        let (tags, image) = read_page(page, &base);
        assert_eq!(tags["og:title"], "The title");
        assert_eq!(tags["og:description"], "About it");
        assert_eq!(tags["og:site_name"], "Site");
        assert_eq!(image.expect("image").as_str(), "http://example.org/img.png");
    }
}
