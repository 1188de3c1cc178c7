//! Server-side key backup (`/room_keys`): encrypted Megolm session keys a user's devices store
//! so a new device can read history. The server keeps versions and opaque session data, and
//! decides only which of two copies of a session is the better one.

use ruma::UserId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::service::counters::Counter;
use crate::storage::{Cf, Db, Key, KeyReader};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub algorithm: String,
    pub auth_data: Value,
    /// Changes whenever the keys in the backup change.
    pub etag: u64,
}

pub struct KeyBackup {
    db: Db,
    versions: Counter,
}

fn version_key(user: &UserId, version: u64) -> Key {
    Key::new().str(user.as_str()).u64(version)
}

/// The keys of a version, narrowed to a room and to one of its sessions.
fn scope(version: Key, room: Option<&str>, session: Option<&str>) -> Key {
    match (room, session) {
        (Some(room), Some(session)) => version.str(room).bytes(session.as_bytes()),
        (Some(room), None) => version.str(room),
        _ => version,
    }
}

fn parse_version(version: &str) -> Result<u64> {
    version
        .parse()
        .map_err(|_| Error::not_found(format!("Unknown backup version {version}")))
}

/// The spec's rule for keeping the better of two copies of a session: verified beats
/// unverified, then the lower first message index, then the lower forwarding count.
fn better(new: &Value, old: &Value) -> bool {
    let verified = |v: &Value| v["is_verified"].as_bool().unwrap_or(false);
    let index = |v: &Value| v["first_message_index"].as_u64().unwrap_or(u64::MAX);
    let forwarded = |v: &Value| v["forwarded_count"].as_u64().unwrap_or(u64::MAX);
    if verified(new) != verified(old) {
        return verified(new);
    }
    if index(new) != index(old) {
        return index(new) < index(old);
    }
    forwarded(new) < forwarded(old)
}

impl KeyBackup {
    pub fn new(db: Db) -> Result<KeyBackup> {
        Ok(KeyBackup {
            versions: Counter::open(db.clone(), b"next_backup_version")?,
            db,
        })
    }

    pub fn create(&self, user: &UserId, algorithm: String, auth_data: Value) -> Result<String> {
        let version = self.versions.next()?;
        self.db.table(Cf::BackupVersions).put_json(
            version_key(user, version),
            &Version {
                algorithm,
                auth_data,
                etag: 0,
            },
        )?;
        Ok(version.to_string())
    }

    /// The newest version, if the user has a backup.
    pub fn latest(&self, user: &UserId) -> Result<Option<(String, Version)>> {
        let prefix = Key::new().str(user.as_str());
        Ok(self
            .db
            .table(Cf::BackupVersions)
            .scan_prefix_json::<Version>(&prefix)?
            .into_iter()
            .last()
            .and_then(|(key, version)| {
                KeyReader::new(&key[prefix.as_ref().len()..])
                    .u64()
                    .map(|number| (number.to_string(), version))
            }))
    }

    pub fn get(&self, user: &UserId, version: &str) -> Result<Version> {
        self.db
            .table(Cf::BackupVersions)
            .get_json(version_key(user, parse_version(version)?))?
            .ok_or_else(|| Error::not_found(format!("Unknown backup version {version}")))
    }

    pub fn update(
        &self,
        user: &UserId,
        version: &str,
        algorithm: String,
        auth_data: Value,
    ) -> Result<()> {
        let mut stored = self.get(user, version)?;
        if stored.algorithm != algorithm {
            return Err(Error::invalid_param(
                "The algorithm of a backup version cannot change",
            ));
        }
        stored.auth_data = auth_data;
        self.db
            .table(Cf::BackupVersions)
            .put_json(version_key(user, parse_version(version)?), &stored)?;
        Ok(())
    }

    pub fn delete(&self, user: &UserId, version: &str) -> Result<()> {
        self.get(user, version)?;
        let number = parse_version(version)?;
        let mut batch = self.db.batch();
        batch.delete(Cf::BackupVersions, version_key(user, number));
        for (key, _) in self
            .db
            .table(Cf::BackupKeys)
            .scan_prefix(version_key(user, number))?
        {
            batch.delete(Cf::BackupKeys, &key);
        }
        batch.commit()?;
        Ok(())
    }

    /// Keys may only be added to the newest version (clients on an old one must notice).
    fn require_current(&self, user: &UserId, version: &str) -> Result<Version> {
        let latest = self.latest(user)?;
        match latest {
            Some((current, stored)) if current == version => Ok(stored),
            Some((current, _)) => {
                self.get(user, version)?;
                Err(Error::new(
                    http::StatusCode::FORBIDDEN,
                    ruma::api::error::ErrorKind::WrongRoomKeysVersion(
                        ruma::api::error::WrongRoomKeysVersionErrorData::new(current),
                    ),
                    "This is not the current backup version",
                ))
            }
            None => Err(Error::not_found(format!(
                "Unknown backup version {version}"
            ))),
        }
    }

    /// Stores sessions (room → session id → data), keeping the better copy of each.
    /// Returns the new `(etag, count)`.
    pub fn put(
        &self,
        user: &UserId,
        version: &str,
        rooms: Vec<(String, String, Value)>,
    ) -> Result<(u64, u64)> {
        let mut stored = self.require_current(user, version)?;
        let number = parse_version(version)?;
        let keys = self.db.table(Cf::BackupKeys);
        let mut batch = self.db.batch();
        let mut changed = false;
        for (room, session, data) in rooms {
            let key = version_key(user, number)
                .str(&room)
                .bytes(session.as_bytes());
            let keep = match keys.get_json::<Value>(&key)? {
                Some(old) => better(&data, &old),
                None => true,
            };
            if keep {
                batch.put_json(Cf::BackupKeys, &key, &data)?;
                changed = true;
            }
        }
        if changed {
            stored.etag += 1;
            batch.put_json(Cf::BackupVersions, version_key(user, number), &stored)?;
        }
        batch.commit()?;
        Ok((stored.etag, self.count(user, number)?))
    }

    fn count(&self, user: &UserId, version: u64) -> Result<u64> {
        Ok(self
            .db
            .table(Cf::BackupKeys)
            .scan_prefix(version_key(user, version))?
            .len() as u64)
    }

    /// `(etag, count)` of a version.
    pub fn etag_and_count(&self, user: &UserId, version: &str) -> Result<(u64, u64)> {
        let stored = self.get(user, version)?;
        Ok((stored.etag, self.count(user, parse_version(version)?)?))
    }

    /// Sessions of a version: all, one room's, or one session (room → session → data).
    pub fn sessions(
        &self,
        user: &UserId,
        version: &str,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<Map<String, Value>> {
        self.get(user, version)?;
        let base = version_key(user, parse_version(version)?);
        let prefix = scope(base.clone(), room, session);
        let mut rooms = Map::new();
        for (key, data) in self
            .db
            .table(Cf::BackupKeys)
            .scan_prefix_json::<Value>(&prefix)?
        {
            let mut reader = KeyReader::new(&key[base.as_ref().len()..]);
            let (Some(room_id), rest) = (reader.str(), reader.rest()) else {
                continue;
            };
            let session_id = String::from_utf8_lossy(rest).into_owned();
            if session.is_some_and(|wanted| wanted != session_id) {
                continue;
            }
            let entry = rooms
                .entry(room_id.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            entry[session_id] = data;
        }
        Ok(rooms)
    }

    /// Deletes sessions (all, a room's, or one). Returns the new `(etag, count)`.
    pub fn delete_sessions(
        &self,
        user: &UserId,
        version: &str,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<(u64, u64)> {
        let mut stored = self.get(user, version)?;
        let number = parse_version(version)?;
        let prefix = scope(version_key(user, number), room, session);
        let mut batch = self.db.batch();
        let mut removed = false;
        for (key, _) in self.db.table(Cf::BackupKeys).scan_prefix(&prefix)? {
            if session.is_some() && key.len() != prefix.as_ref().len() {
                continue;
            }
            batch.delete(Cf::BackupKeys, &key);
            removed = true;
        }
        if removed {
            stored.etag += 1;
            batch.put_json(Cf::BackupVersions, version_key(user, number), &stored)?;
        }
        batch.commit()?;
        Ok((stored.etag, self.count(user, number)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_better_session_is_kept() {
        let old = json!({"is_verified": false, "first_message_index": 3, "forwarded_count": 0});
        assert!(better(
            &json!({"is_verified": true, "first_message_index": 9, "forwarded_count": 9}),
            &old
        ));
        assert!(better(
            &json!({"is_verified": false, "first_message_index": 1, "forwarded_count": 5}),
            &old
        ));
        assert!(!better(
            &json!({"is_verified": false, "first_message_index": 3, "forwarded_count": 1}),
            &old
        ));
        assert!(!better(
            &json!({"is_verified": false, "first_message_index": 3, "forwarded_count": 0}),
            &old
        ));
    }
}
