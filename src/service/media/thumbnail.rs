//! Thumbnails: made once per (media, size, method) with the `image` crate and cached as media.
//!
//! Requests are rounded up to the sizes the spec suggests servers produce, so a client asking
//! for every size in turn cannot fill the disk; an image no larger than the size asked for is
//! served as it is (never upscaled).

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::time::Duration;

use super::{Content, Media};
use crate::error::{Error, Result};
use crate::storage::{Cf, Key};

/// The spec's recommended thumbnail sizes, smallest first.
const SIZES: &[(u32, u32)] = &[(32, 32), (96, 96), (320, 240), (640, 480), (800, 600)];
/// Images with more pixels on a side than this are not decoded.
const MAX_SIDE: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Fit within the size, keeping the aspect ratio.
    Scale,
    /// Fill the size, cutting off what sticks out.
    Crop,
}

#[derive(Debug, Serialize, Deserialize)]
struct Thumbnail {
    sha256: String,
    size: u64,
    content_type: String,
}

/// What was made: new thumbnail bytes, or "the original is small enough".
enum Made {
    Thumbnail(Vec<u8>, &'static str),
    Original,
}

impl Media {
    pub async fn thumbnail(
        &self,
        media_id: &str,
        width: u32,
        height: u32,
        method: Method,
        wait: Option<Duration>,
    ) -> Result<Content> {
        let original = self.content(media_id, wait).await?;
        if original.size > self.config.max_thumbnail_source_size {
            return Err(Error::too_large("The image is too large to thumbnail"));
        }
        let Some(&(target_w, target_h)) = SIZES.iter().find(|(w, h)| *w >= width && *h >= height)
        else {
            // Larger than any thumbnail we make: the original is the best answer, if an image.
            return self.original_if_image(original).await;
        };
        let key = Key::new()
            .bytes(media_id.as_bytes())
            .u64(u64::from(target_w))
            .u64(u64::from(target_h))
            .u64(u64::from(method == Method::Crop));
        let table = self.db.table(Cf::MediaThumbnails);
        if let Some(cached) = table.get_json::<Thumbnail>(&key)? {
            return Ok(Content {
                path: self.content_path(&cached.sha256),
                size: cached.size,
                filename: Some(thumbnail_name(&cached.content_type)),
                content_type: Some(cached.content_type),
            });
        }
        let path = original.path.clone();
        let made = tokio::task::spawn_blocking(move || make(&path, target_w, target_h, method))
            .await
            .map_err(Error::internal)??;
        match made {
            Made::Original => self.original_if_image(original).await,
            Made::Thumbnail(bytes, content_type) => {
                let size = bytes.len() as u64;
                let _storing = self.files.read().await;
                let sha256 = self.store_bytes(bytes).await?;
                let thumbnail = Thumbnail {
                    sha256,
                    size,
                    content_type: content_type.to_owned(),
                };
                table.put_json(&key, &thumbnail)?;
                Ok(Content {
                    path: self.content_path(&thumbnail.sha256),
                    size,
                    content_type: Some(thumbnail.content_type),
                    filename: Some(thumbnail_name(content_type)),
                })
            }
        }
    }

    /// The original, when it is an image of a type browsers render safely inline.
    async fn original_if_image(&self, original: Content) -> Result<Content> {
        let path = original.path.clone();
        let format = tokio::task::spawn_blocking(move || {
            ImageReader::open(&path)
                .ok()
                .and_then(|reader| reader.with_guessed_format().ok())
                .and_then(|reader| reader.format())
        })
        .await
        .map_err(Error::internal)?;
        let content_type = match format {
            Some(ImageFormat::Png) => "image/png",
            Some(ImageFormat::Jpeg) => "image/jpeg",
            Some(ImageFormat::Gif) => "image/gif",
            Some(ImageFormat::WebP) => "image/webp",
            _ => return Err(cannot_thumbnail()),
        };
        Ok(Content {
            content_type: Some(content_type.to_owned()),
            filename: Some(thumbnail_name(content_type)),
            ..original
        })
    }
}

fn thumbnail_name(content_type: &str) -> String {
    let extension = content_type.strip_prefix("image/").unwrap_or("bin");
    format!("thumbnail.{extension}")
}

fn cannot_thumbnail() -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        ruma::api::error::ErrorKind::Unknown,
        "Cannot generate thumbnails for the requested content",
    )
}

/// Decodes (with limits, so a small file cannot claim a huge canvas), resizes and encodes.
fn make(path: &std::path::Path, width: u32, height: u32, method: Method) -> Result<Made> {
    let mut reader = ImageReader::open(path)
        .map_err(Error::internal)?
        .with_guessed_format()
        .map_err(Error::internal)?;
    let format = reader.format().ok_or_else(cannot_thumbnail)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(cannot_thumbnail());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => Error::too_large("The image is too large to thumbnail"),
        _ => cannot_thumbnail(),
    })?;
    if image.width() <= width && image.height() <= height {
        return Ok(Made::Original);
    }
    let resized = match method {
        Method::Scale => image.resize(width, height, image::imageops::FilterType::Triangle),
        Method::Crop => image.resize_to_fill(width, height, image::imageops::FilterType::Triangle),
    };
    // JPEG for opaque photos, PNG where there is transparency or the source was lossless.
    let lossless =
        matches!(format, ImageFormat::Png | ImageFormat::Gif) || resized.color().has_alpha();
    let mut bytes = Vec::new();
    let content_type = if lossless {
        resized
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(Error::internal)?;
        "image/png"
    } else {
        DynamicImage::ImageRgb8(resized.to_rgb8())
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .map_err(Error::internal)?;
        "image/jpeg"
    };
    Ok(Made::Thumbnail(bytes, content_type))
}
