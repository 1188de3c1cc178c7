//! What admins do to stored media: list a user's uploads, quarantine media (nobody can download
//! it any more) and delete it (its record, its thumbnails, and its file once no other media id
//! names the same bytes).

use ruma::UserId;
use std::collections::HashSet;

use crate::error::Result;
use crate::service::media::{Media, MediaRecord, valid_media_id};
use crate::storage::{Cf, Key};

impl Media {
    /// What `user` uploaded, oldest first, with each upload's id.
    pub fn uploads_of(&self, user: &UserId) -> Result<Vec<(String, MediaRecord)>> {
        let prefix = Key::new().str(user.as_str());
        let mut uploads = Vec::new();
        for (key, _) in self.db.table(Cf::UserMedia).scan_prefix(&prefix)? {
            let Ok(id) = std::str::from_utf8(&key[prefix.as_ref().len()..]) else {
                continue;
            };
            if let Some(record) = self.record(id)? {
                uploads.push((id.to_owned(), record));
            }
        }
        uploads.sort_by_key(|(_, record)| record.created_ms);
        Ok(uploads)
    }

    pub fn upload_ids_of(&self, user: &UserId) -> Result<Vec<String>> {
        Ok(self
            .uploads_of(user)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Every stored media id with its record (admin listings and bulk deletion).
    pub fn all(&self) -> Result<Vec<(String, MediaRecord)>> {
        Ok(self
            .db
            .table(Cf::Media)
            .scan_prefix_json::<MediaRecord>([])?
            .into_iter()
            .filter_map(|(key, record)| Some((String::from_utf8(key.into_vec()).ok()?, record)))
            .collect())
    }

    /// Quarantines (`by: Some`) or releases (`None`) one media id. With `respect_protection`,
    /// media an admin protected is left alone. Returns whether the record changed.
    pub fn set_quarantine(
        &self,
        media_id: &str,
        by: Option<&UserId>,
        respect_protection: bool,
    ) -> Result<bool> {
        let Some(mut record) = self.record(media_id)? else {
            return Ok(false);
        };
        if respect_protection && record.safe_from_quarantine && by.is_some() {
            return Ok(false);
        }
        if record.quarantined_by.as_deref() == by {
            return Ok(false);
        }
        record.quarantined_by = by.map(UserId::to_owned);
        self.db.table(Cf::Media).put_json(media_id, &record)?;
        tracing::info!(
            media = media_id,
            quarantined = by.is_some(),
            "media quarantine changed"
        );
        Ok(true)
    }

    /// Protects media from bulk quarantines, or lifts that protection.
    pub fn set_protected(&self, media_id: &str, protected: bool) -> Result<bool> {
        let Some(mut record) = self.record(media_id)? else {
            return Ok(false);
        };
        record.safe_from_quarantine = protected;
        self.db.table(Cf::Media).put_json(media_id, &record)?;
        Ok(true)
    }

    /// Deletes media ids; unknown ids are skipped. Returns the ids deleted.
    pub async fn delete(&self, media_ids: &[String]) -> Result<Vec<String>> {
        let _deleting = self.files.write().await;
        let mut batch = self.db.batch();
        let mut deleted = Vec::new();
        let mut orphans = HashSet::new();
        for id in media_ids {
            if !valid_media_id(id) {
                continue;
            }
            let Some(record) = self.record(id)? else {
                continue;
            };
            batch.delete(Cf::Media, id.as_bytes());
            let owner_key = Key::new()
                .str(record.uploader.as_str())
                .bytes(id.as_bytes());
            batch.delete(Cf::UserMedia, &owner_key);
            batch.delete(Cf::MediaPending, &owner_key);
            orphans.extend(record.sha256);
            for (key, thumbnail) in self
                .db
                .table(Cf::MediaThumbnails)
                .scan_prefix_json::<serde_json::Value>(id.as_bytes())?
            {
                // The key is the id and three u64s: a longer id sharing this prefix is not ours.
                if key.len() != id.len() + 24 {
                    continue;
                }
                batch.delete(Cf::MediaThumbnails, &key);
                if let Some(sha256) = thumbnail.get("sha256").and_then(|s| s.as_str()) {
                    orphans.insert(sha256.to_owned());
                }
            }
            deleted.push(id.clone());
        }
        batch.commit()?;
        // Bytes other media (or their thumbnails) still name stay on disk.
        for (_, record) in self.all()? {
            if let Some(sha256) = &record.sha256 {
                orphans.remove(sha256);
            }
        }
        for (_, thumbnail) in self
            .db
            .table(Cf::MediaThumbnails)
            .scan_prefix_json::<serde_json::Value>([])?
        {
            if let Some(sha256) = thumbnail.get("sha256").and_then(|s| s.as_str()) {
                orphans.remove(sha256);
            }
        }
        for sha256 in orphans {
            if let Err(err) = tokio::fs::remove_file(self.content_path(&sha256)).await
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(%err, sha256, "could not remove a deleted media file");
            }
        }
        tracing::info!(count = deleted.len(), "media deleted");
        Ok(deleted)
    }

    /// Media uploaded before `before_ms` and larger than `size_gt` bytes, except protected media.
    pub fn older_than(&self, before_ms: u64, size_gt: u64) -> Result<Vec<(String, MediaRecord)>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|(_, record)| {
                record.created_ms < before_ms
                    && record.size > size_gt
                    && !record.safe_from_quarantine
            })
            .collect())
    }
}
