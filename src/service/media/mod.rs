//! The media repository: uploaded files on disk, content-addressed by sha256 (identical uploads
//! are stored once), with their metadata in RocksDB. Uploads and downloads stream, so memory
//! does not grow with file size.

pub mod preview;
pub mod removal;
pub mod thumbnail;

use futures_util::{Stream, StreamExt as _};
use ruma::{OwnedUserId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::watch;

use crate::config::MediaConfig;
use crate::error::{Error, Result};
use crate::service::users::now_ms;
use crate::storage::{Cf, Db, Key};

/// How long a media id made by `/create` waits for its upload.
const PENDING_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;
/// Media ids made by `/create` and not yet uploaded, per user.
const MAX_PENDING_PER_USER: usize = 10;
/// Longest a download of not-yet-uploaded media waits (`timeout_ms`).
const MAX_WAIT: Duration = Duration::from_secs(120);
const DEFAULT_WAIT: Duration = Duration::from_secs(20);

/// What the repository knows of one media id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaRecord {
    /// Hex sha256 of the bytes; `None` while an id made by `/create` waits for its upload.
    pub sha256: Option<String>,
    pub size: u64,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub uploader: OwnedUserId,
    pub created_ms: u64,
    /// The admin who quarantined it: nobody can download it any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined_by: Option<OwnedUserId>,
    /// Protected by an admin from quarantines of whole rooms or users.
    #[serde(default)]
    pub safe_from_quarantine: bool,
}

/// A stored file ready to be served.
pub struct Content {
    pub path: PathBuf,
    pub size: u64,
    pub content_type: Option<String>,
    pub filename: Option<String>,
}

pub struct Media {
    db: Db,
    config: MediaConfig,
    root: PathBuf,
    /// Bumped on every upload, so downloads waiting for pending media look again.
    uploaded: watch::Sender<u64>,
    /// `None` when URL previews are turned off.
    previewer: Option<preview::Previewer>,
    /// Held shared by whatever stores bytes and then the record naming them, and exclusively
    /// by deletion while it decides which files no record names any more: an upload of bytes
    /// identical to deleted media cannot lose its file in between.
    files: tokio::sync::RwLock<()>,
}

/// A media id is 24 characters from `[A-Za-z0-9]`; any id we serve must be made of the
/// characters the spec allows (`[A-Za-z0-9_-]`), which rules out path tricks.
pub fn valid_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Media {
    pub fn new(db: Db, config: MediaConfig, data_dir: &std::path::Path) -> Result<Media> {
        let root = data_dir.join("media");
        std::fs::create_dir_all(root.join("tmp")).map_err(Error::internal)?;
        let previewer = match config.url_preview.enabled {
            true => Some(preview::Previewer::new(&config.url_preview)?),
            false => None,
        };
        Ok(Media {
            db,
            config,
            root,
            uploaded: watch::Sender::new(0),
            previewer,
            files: tokio::sync::RwLock::new(()),
        })
    }

    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    fn new_id() -> String {
        crate::service::random_string(24)
    }

    fn content_path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(sha256)
    }

    pub fn record(&self, media_id: &str) -> Result<Option<MediaRecord>> {
        if !valid_media_id(media_id) {
            return Ok(None);
        }
        Ok(self.db.table(Cf::Media).get_json(media_id)?)
    }

    /// `/create`: a media id the user uploads to later. Returns it and when it expires.
    pub fn create_pending(&self, user: &UserId) -> Result<(String, u64)> {
        let now = now_ms();
        let pending = self
            .db
            .table(Cf::MediaPending)
            .scan_prefix(Key::new().str(user.as_str()))?
            .into_iter()
            .filter(|(_, expires)| read_u64(expires) > now)
            .count();
        if pending >= MAX_PENDING_PER_USER {
            return Err(Error::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                ruma::api::error::ErrorKind::LimitExceeded(Default::default()),
                "Too many media ids waiting for their upload",
            ));
        }
        let id = Self::new_id();
        let expires = now + PENDING_LIFETIME_MS;
        let record = MediaRecord {
            sha256: None,
            size: 0,
            content_type: None,
            filename: None,
            uploader: user.to_owned(),
            created_ms: now,
            quarantined_by: None,
            safe_from_quarantine: false,
        };
        let mut batch = self.db.batch();
        batch.put_json(Cf::Media, id.as_bytes(), &record)?;
        batch.put(
            Cf::MediaPending,
            Key::new().str(user.as_str()).bytes(id.as_bytes()),
            expires.to_be_bytes(),
        );
        batch.commit()?;
        Ok((id, expires))
    }

    /// Stores an upload: a new media id, or (`into: Some`) the id `/create` made for this user.
    pub async fn upload<S, E>(
        &self,
        user: &UserId,
        into: Option<&str>,
        content_type: Option<String>,
        filename: Option<String>,
        declared_length: Option<u64>,
        body: S,
    ) -> Result<String>
    where
        S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let limit = self.config.max_upload_size;
        if declared_length.is_some_and(|length| length > limit) {
            return Err(too_large(limit));
        }
        let pending_key = into.map(|id| Key::new().str(user.as_str()).bytes(id.as_bytes()));
        if let Some(id) = into {
            let record = self
                .record(id)?
                .ok_or_else(|| Error::not_found("Unknown media id"))?;
            if record.uploader != user {
                return Err(Error::forbidden("This media id belongs to someone else"));
            }
            if record.sha256.is_some() {
                return Err(Error::new(
                    http::StatusCode::CONFLICT,
                    ruma::api::error::ErrorKind::CannotOverwriteMedia,
                    "This media has been uploaded already",
                ));
            }
            let expires = self
                .db
                .table(Cf::MediaPending)
                .get(pending_key.as_ref().map(|k| k.as_ref()).unwrap_or_default())?
                .map(|v| read_u64(&v))
                .unwrap_or(0);
            if expires <= now_ms() {
                return Err(Error::not_found("This media id has expired"));
            }
        }
        if self.config.user_quota > 0 {
            let used = self.used_by(user)?;
            if used + declared_length.unwrap_or(0) > self.config.user_quota {
                return Err(Error::forbidden("Your media quota is used up"));
            }
        }

        let _storing = self.files.read().await;
        let (sha256, size) = self.receive(body, limit).await?;
        if self.config.user_quota > 0 && self.used_by(user)? + size > self.config.user_quota {
            return Err(Error::forbidden("Your media quota is used up"));
        }
        let id = into.map_or_else(Self::new_id, str::to_owned);
        let record = MediaRecord {
            sha256: Some(sha256),
            size,
            content_type: content_type.filter(|t| !t.is_empty()),
            filename: filename.filter(|f| !f.is_empty()),
            uploader: user.to_owned(),
            created_ms: now_ms(),
            quarantined_by: None,
            safe_from_quarantine: false,
        };
        let mut batch = self.db.batch();
        batch.put_json(Cf::Media, id.as_bytes(), &record)?;
        batch.put(
            Cf::UserMedia,
            Key::new().str(user.as_str()).bytes(id.as_bytes()),
            size.to_be_bytes(),
        );
        if let Some(key) = &pending_key {
            batch.delete(Cf::MediaPending, key);
        }
        batch.commit()?;
        self.uploaded.send_modify(|n| *n += 1);
        tracing::info!(media = %id, size, "media uploaded");
        Ok(id)
    }

    /// Bytes `user` has uploaded.
    fn used_by(&self, user: &UserId) -> Result<u64> {
        Ok(self
            .db
            .table(Cf::UserMedia)
            .scan_prefix(Key::new().str(user.as_str()))?
            .iter()
            .map(|(_, size)| read_u64(size))
            .sum())
    }

    /// Streams a body to a temporary file while hashing it, then moves it to its
    /// content-addressed place (or drops it, if those bytes are stored already).
    async fn receive<S, E>(&self, mut body: S, limit: u64) -> Result<(String, u64)>
    where
        S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let temp = self.root.join("tmp").join(Self::new_id());
        let result = async {
            let mut file = tokio::fs::File::create(&temp)
                .await
                .map_err(Error::internal)?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    Error::new(
                        http::StatusCode::BAD_REQUEST,
                        ruma::api::error::ErrorKind::Unknown,
                        format!("Could not read the upload: {e}"),
                    )
                })?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(too_large(limit));
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(Error::internal)?;
            }
            file.sync_all().await.map_err(Error::internal)?;
            Ok((hex::encode(hasher.finalize()), size))
        }
        .await;
        let (sha256, size) = match result {
            Ok(done) => done,
            Err(err) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(err);
            }
        };
        let path = self.content_path(&sha256);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let _ = tokio::fs::remove_file(&temp).await;
        } else {
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(Error::internal)?;
            }
            tokio::fs::rename(&temp, &path)
                .await
                .map_err(Error::internal)?;
        }
        Ok((sha256, size))
    }

    /// The stored file of a media id. Waits up to `wait` for media still being uploaded
    /// (then 504 `M_NOT_YET_UPLOADED`).
    pub async fn content(&self, media_id: &str, wait: Option<Duration>) -> Result<Content> {
        let mut uploaded = self.uploaded.subscribe();
        let deadline = tokio::time::Instant::now() + wait.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
        loop {
            let record = self
                .record(media_id)?
                .filter(|record| record.quarantined_by.is_none())
                .ok_or_else(|| Error::not_found("Unknown media"))?;
            if let Some(sha256) = &record.sha256 {
                return Ok(Content {
                    path: self.content_path(sha256),
                    size: record.size,
                    content_type: record.content_type,
                    filename: record.filename,
                });
            }
            match tokio::time::timeout_at(deadline, uploaded.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    return Err(Error::new(
                        http::StatusCode::GATEWAY_TIMEOUT,
                        ruma::api::error::ErrorKind::NotYetUploaded,
                        "The media has not been uploaded yet",
                    ));
                }
            }
        }
    }

    /// Stores media the server made for `owner` (a preview image) under a new media id. It
    /// does not count against the owner's quota.
    pub async fn store_generated(
        &self,
        owner: &UserId,
        bytes: Vec<u8>,
        content_type: String,
    ) -> Result<String> {
        let size = bytes.len() as u64;
        let _storing = self.files.read().await;
        let sha256 = self.store_bytes(bytes).await?;
        let id = Self::new_id();
        let record = MediaRecord {
            sha256: Some(sha256),
            size,
            content_type: Some(content_type),
            filename: None,
            uploader: owner.to_owned(),
            created_ms: now_ms(),
            quarantined_by: None,
            safe_from_quarantine: false,
        };
        self.db.table(Cf::Media).put_json(id.as_bytes(), &record)?;
        Ok(id)
    }

    /// Stores bytes the server made itself (thumbnails, preview images) content-addressed.
    /// Returns their sha256.
    pub async fn store_bytes(&self, bytes: Vec<u8>) -> Result<String> {
        let size = bytes.len() as u64;
        let stream = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
            bytes::Bytes::from(bytes),
        )]);
        let (sha256, _) = self.receive(stream, size).await?;
        Ok(sha256)
    }
}

fn read_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or_default()
}

fn too_large(limit: u64) -> Error {
    Error::too_large(format!("The upload is larger than {limit} bytes"))
}
