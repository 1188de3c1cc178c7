//! Devices and their sessions: access tokens (256-bit random, stored only as a SHA-256 hash),
//! refresh tokens, and the last-seen address and time that `GET /devices` reports.

use base64::Engine as _;
use rand::RngCore;
use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::service::users::now_ms;
use crate::storage::{Batch, Cf, Db, Key};

/// How often a device's last-seen time is written back: reads see the in-memory value at once.
const LAST_SEEN_WRITE_INTERVAL_MS: u64 = 5 * 60 * 1000;

/// A device as stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Device {
    pub display_name: Option<String>,
    pub last_seen_ip: Option<String>,
    pub last_seen_ts: Option<u64>,
    /// Hex SHA-256 of the device's current access token, so deleting the device revokes it.
    access_token_hash: Option<String>,
    refresh_token_hash: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccessTokenRecord {
    user_id: OwnedUserId,
    device_id: OwnedDeviceId,
    /// Only tokens issued together with a refresh token expire.
    expires_at_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefreshTokenRecord {
    user_id: OwnedUserId,
    device_id: OwnedDeviceId,
}

/// Who made a request, as proven by its access token.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
}

/// What a login, registration or refresh hands back to the client.
#[derive(Debug)]
pub struct Session {
    pub device_id: OwnedDeviceId,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<Duration>,
}

pub struct Devices {
    db: Db,
    refreshable_lifetime: Duration,
    /// Latest (ip, time) per device, and when it was last written to the database.
    last_seen: Mutex<HashMap<(OwnedUserId, OwnedDeviceId), LastSeen>>,
}

#[derive(Clone)]
struct LastSeen {
    ip: String,
    ts: u64,
    written_ts: u64,
}

impl Devices {
    pub fn new(db: Db, refreshable_lifetime: Duration) -> Self {
        Devices {
            db,
            refreshable_lifetime,
            last_seen: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `user_id` on a new device, or on `device_id` if given (an existing
    /// device keeps its name and loses its previous tokens).
    pub fn create_session(
        &self,
        user_id: &UserId,
        device_id: Option<OwnedDeviceId>,
        initial_display_name: Option<String>,
        refreshable: bool,
    ) -> Result<Session> {
        let device_id = device_id.unwrap_or_else(generate_device_id);
        let mut device = self.get(user_id, &device_id)?.unwrap_or_default();
        let mut batch = self.db.batch();
        revoke_tokens(&mut batch, &device);
        if device.display_name.is_none() {
            device.display_name = initial_display_name;
        }
        let session =
            self.issue_tokens(&mut batch, user_id, &device_id, &mut device, refreshable)?;
        batch.commit()?;
        Ok(session)
    }

    fn issue_tokens(
        &self,
        batch: &mut Batch<'_>,
        user_id: &UserId,
        device_id: &DeviceId,
        device: &mut Device,
        refreshable: bool,
    ) -> Result<Session> {
        let access_token = generate_token("mya_");
        let access_hash = token_hash(&access_token);
        let expires_in = refreshable.then_some(self.refreshable_lifetime);
        let record = AccessTokenRecord {
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            expires_at_ms: expires_in.map(|d| now_ms().saturating_add(duration_ms(d))),
        };
        batch.put_json(Cf::AccessTokens, access_hash, &record)?;
        device.access_token_hash = Some(hex::encode(access_hash));

        let refresh_token = refreshable.then(|| generate_token("myr_"));
        device.refresh_token_hash = None;
        if let Some(refresh_token) = &refresh_token {
            let refresh_hash = token_hash(refresh_token);
            let record = RefreshTokenRecord {
                user_id: user_id.to_owned(),
                device_id: device_id.to_owned(),
            };
            batch.put_json(Cf::RefreshTokens, refresh_hash, &record)?;
            device.refresh_token_hash = Some(hex::encode(refresh_hash));
        }
        batch.put_json(Cf::Devices, device_key(user_id, device_id), device)?;
        Ok(Session {
            device_id: device_id.to_owned(),
            access_token,
            refresh_token,
            expires_in,
        })
    }

    /// The identity behind an access token. Unknown → `M_UNKNOWN_TOKEN`; expired →
    /// `M_UNKNOWN_TOKEN` with `soft_logout`, so the client refreshes or logs in again.
    pub fn authenticate(&self, access_token: &str) -> Result<Identity> {
        let record: AccessTokenRecord = self
            .db
            .table(Cf::AccessTokens)
            .get_json(token_hash(access_token))?
            .ok_or_else(|| Error::unknown_token(false))?;
        if record.expires_at_ms.is_some_and(|at| at <= now_ms()) {
            return Err(Error::unknown_token(true));
        }
        Ok(Identity {
            user_id: record.user_id,
            device_id: record.device_id,
        })
    }

    /// Trades a refresh token for a new access and refresh token; the old pair stops working.
    pub fn refresh(&self, refresh_token: &str) -> Result<Session> {
        let hash = token_hash(refresh_token);
        let record: RefreshTokenRecord = self
            .db
            .table(Cf::RefreshTokens)
            .get_json(hash)?
            .ok_or_else(|| Error::unknown_token(false))?;
        let mut device = self
            .get(&record.user_id, &record.device_id)?
            .ok_or_else(|| Error::unknown_token(false))?;
        if device.refresh_token_hash.as_deref() != Some(hex::encode(hash).as_str()) {
            return Err(Error::unknown_token(false));
        }
        let mut batch = self.db.batch();
        revoke_tokens(&mut batch, &device);
        let session = self.issue_tokens(
            &mut batch,
            &record.user_id,
            &record.device_id,
            &mut device,
            true,
        )?;
        batch.commit()?;
        Ok(session)
    }

    pub fn get(&self, user_id: &UserId, device_id: &DeviceId) -> Result<Option<Device>> {
        let mut device: Option<Device> = self
            .db
            .table(Cf::Devices)
            .get_json(device_key(user_id, device_id))?;
        if let Some(device) = &mut device {
            self.merge_last_seen(user_id, device_id, device);
        }
        Ok(device)
    }

    /// Every device of a user, in device id order.
    pub fn list(&self, user_id: &UserId) -> Result<Vec<(OwnedDeviceId, Device)>> {
        let prefix = Key::new().str(user_id.as_str());
        let mut devices = Vec::new();
        for (key, mut device) in self
            .db
            .table(Cf::Devices)
            .scan_prefix_json::<Device>(&prefix)?
        {
            let device_id =
                std::str::from_utf8(&key[prefix.as_ref().len()..]).map_err(Error::internal)?;
            let device_id: OwnedDeviceId = device_id.into();
            self.merge_last_seen(user_id, &device_id, &mut device);
            devices.push((device_id, device));
        }
        Ok(devices)
    }

    /// Renames a device; `M_NOT_FOUND` if the user has no such device.
    pub fn set_display_name(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        name: Option<String>,
    ) -> Result<()> {
        let mut device = self
            .db
            .table(Cf::Devices)
            .get_json::<Device>(device_key(user_id, device_id))?
            .ok_or_else(|| Error::not_found(format!("No device {device_id}")))?;
        device.display_name = name;
        self.db
            .table(Cf::Devices)
            .put_json(device_key(user_id, device_id), &device)?;
        Ok(())
    }

    /// Adds the removal of a device and its tokens to `batch`; false if there was no such device.
    pub fn remove(
        &self,
        batch: &mut Batch<'_>,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<bool> {
        let Some(device) = self
            .db
            .table(Cf::Devices)
            .get_json::<Device>(device_key(user_id, device_id))?
        else {
            return Ok(false);
        };
        revoke_tokens(batch, &device);
        batch.delete(Cf::Devices, device_key(user_id, device_id));
        crate::service::keys::remove_device(&self.db, batch, user_id, device_id)?;
        self.forget_last_seen(user_id, device_id);
        Ok(true)
    }

    /// Adds the removal of every device of a user (but `keep`) to `batch`.
    pub fn remove_all(
        &self,
        batch: &mut Batch<'_>,
        user_id: &UserId,
        keep: Option<&DeviceId>,
    ) -> Result<()> {
        for (device_id, _) in self.list(user_id)? {
            if Some(device_id.as_ref()) != keep {
                self.remove(batch, user_id, &device_id)?;
            }
        }
        Ok(())
    }

    /// Notes that a device was just used from `ip`; written back at most every few minutes.
    pub fn touch(&self, identity: &Identity, ip: IpAddr) {
        let now = now_ms();
        let key = (identity.user_id.clone(), identity.device_id.clone());
        let write = {
            let Ok(mut seen) = self.last_seen.lock() else {
                return;
            };
            let entry = seen.entry(key).or_insert(LastSeen {
                ip: String::new(),
                ts: 0,
                written_ts: 0,
            });
            entry.ip = ip.to_string();
            entry.ts = now;
            let due = now.saturating_sub(entry.written_ts) >= LAST_SEEN_WRITE_INTERVAL_MS;
            if due {
                entry.written_ts = now;
            }
            due.then(|| entry.clone())
        };
        if let Some(seen) = write {
            let table = self.db.table(Cf::Devices);
            let key = device_key(&identity.user_id, &identity.device_id);
            let result = table
                .get_json::<Device>(&key)
                .and_then(|device| match device {
                    Some(mut device) => {
                        device.last_seen_ip = Some(seen.ip);
                        device.last_seen_ts = Some(seen.ts);
                        table.put_json(&key, &device)
                    }
                    None => Ok(()),
                });
            if let Err(err) = result {
                tracing::warn!(%err, "could not record last-seen time");
            }
        }
    }

    fn merge_last_seen(&self, user_id: &UserId, device_id: &DeviceId, device: &mut Device) {
        let Ok(seen) = self.last_seen.lock() else {
            return;
        };
        if let Some(entry) = seen.get(&(user_id.to_owned(), device_id.to_owned())) {
            device.last_seen_ip = Some(entry.ip.clone());
            device.last_seen_ts = Some(entry.ts);
        }
    }

    fn forget_last_seen(&self, user_id: &UserId, device_id: &DeviceId) {
        if let Ok(mut seen) = self.last_seen.lock() {
            seen.remove(&(user_id.to_owned(), device_id.to_owned()));
        }
    }
}

fn revoke_tokens(batch: &mut Batch<'_>, device: &Device) {
    for (cf, hash) in [
        (Cf::AccessTokens, &device.access_token_hash),
        (Cf::RefreshTokens, &device.refresh_token_hash),
    ] {
        if let Some(bytes) = hash.as_deref().and_then(|h| hex::decode(h).ok()) {
            batch.delete(cf, bytes);
        }
    }
}

fn device_key(user_id: &UserId, device_id: &DeviceId) -> Key {
    Key::new().str(user_id.as_str()).bytes(device_id.as_bytes())
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A 256-bit random token, URL-safe, with a prefix that says what it is (for secret scanners).
fn generate_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Ten upper-case letters, as other homeservers make them.
fn generate_device_id() -> OwnedDeviceId {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let id: String = (0..10)
        .map(|_| char::from(rng.gen_range(b'A'..=b'Z')))
        .collect();
    id.into()
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(lifetime: Duration) -> (tempfile::TempDir, Devices) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), &Default::default()).expect("db");
        (dir, Devices::new(db, lifetime))
    }

    fn alice() -> OwnedUserId {
        "@alice:example.org".try_into().expect("user id")
    }

    #[test]
    fn tokens_authenticate_until_the_device_goes() {
        let (_dir, devices) = devices(Duration::from_secs(60));
        let session = devices
            .create_session(&alice(), None, Some("phone".into()), false)
            .expect("session");
        assert_eq!(session.access_token.len(), 4 + 43);
        let identity = devices.authenticate(&session.access_token).expect("valid");
        assert_eq!(identity.device_id, session.device_id);
        let mut batch = devices.db.batch();
        assert!(
            devices
                .remove(&mut batch, &alice(), &session.device_id)
                .expect("remove")
        );
        batch.commit().expect("commit");
        let err = devices.authenticate(&session.access_token).unwrap_err();
        assert!(
            matches!(err.kind(), Some(ruma::api::error::ErrorKind::UnknownToken(d)) if !d.soft_logout)
        );
    }

    #[test]
    fn reusing_a_device_id_revokes_its_old_token() {
        let (_dir, devices) = devices(Duration::from_secs(60));
        let first = devices
            .create_session(&alice(), Some("DEV".into()), Some("one".into()), false)
            .expect("s1");
        let second = devices
            .create_session(&alice(), Some("DEV".into()), Some("two".into()), false)
            .expect("s2");
        assert!(devices.authenticate(&first.access_token).is_err());
        assert!(devices.authenticate(&second.access_token).is_ok());
        let listed = devices.list(&alice()).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].1.display_name.as_deref(), Some("one"));
    }

    #[test]
    fn expired_tokens_are_soft_logouts_and_refresh_rotates() {
        let (_dir, devices) = devices(Duration::ZERO);
        let session = devices
            .create_session(&alice(), None, None, true)
            .expect("session");
        let err = devices.authenticate(&session.access_token).unwrap_err();
        assert!(
            matches!(err.kind(), Some(ruma::api::error::ErrorKind::UnknownToken(d)) if d.soft_logout)
        );
        let refresh = session.refresh_token.expect("refresh token");
        let next = devices.refresh(&refresh).expect("refresh");
        assert_eq!(next.device_id, session.device_id);
        assert!(
            devices.refresh(&refresh).is_err(),
            "a refresh token works once"
        );
        assert!(next.refresh_token.is_some());
    }
}
