//! End-to-end encryption keys: device identity keys, one-time and fallback keys, cross-signing
//! keys and the signatures on them, and the device-list changes `/sync` reports.
//!
//! The server never sees plaintext. It stores what clients upload exactly as uploaded (the
//! signatures cover the canonical JSON), checks the signatures it can check, and hands keys out
//! by the spec's rules: a one-time key goes to exactly one claimer.

use ruma::canonical_json::CanonicalJsonObject;
use ruma::signatures::{to_canonical_json_string_for_signing, verify_canonical_json_bytes};
use ruma::{DeviceId, OwnedUserId, SigningKeyAlgorithm, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::stream::Stream;
use crate::storage::{Batch, Cf, Db, Key, KeyReader};

/// Cross-signing key kinds as stored.
pub const MASTER: &str = "master";
pub const SELF_SIGNING: &str = "self_signing";
pub const USER_SIGNING: &str = "user_signing";

#[derive(Debug, Serialize, Deserialize)]
struct Fallback {
    key_id: String,
    key: Value,
    used: bool,
}

pub struct Keys {
    db: Db,
    stream: Arc<Stream>,
    /// Claims read and delete; one at a time, so a key is never handed out twice.
    claims: Mutex<()>,
}

fn device_key(user: &UserId, device: &DeviceId) -> Key {
    Key::new().str(user.as_str()).str(device.as_str())
}

/// The part of a key id before the colon (`signed_curve25519:AAAA` → `signed_curve25519`).
fn algorithm_of(key_id: &str) -> &str {
    key_id
        .split_once(':')
        .map_or(key_id, |(algorithm, _)| algorithm)
}

/// Whether `object` carries a valid ed25519 signature by `signer` with key `key_id`
/// (`ed25519:<id>`) whose public part is `public_key` (unpadded base64).
pub fn signed_by(object: &Value, signer: &str, key_id: &str, public_key: &str) -> bool {
    let Some(signature) = object["signatures"][signer][key_id].as_str() else {
        return false;
    };
    let (Ok(public), Ok(signature)) = (decode(public_key), decode(signature)) else {
        return false;
    };
    let Ok(canonical) = serde_json::from_value::<CanonicalJsonObject>(object.clone()) else {
        return false;
    };
    let Ok(text) = to_canonical_json_string_for_signing(&canonical) else {
        return false;
    };
    verify_canonical_json_bytes(
        &SigningKeyAlgorithm::Ed25519,
        &public,
        &signature,
        text.as_bytes(),
    )
    .is_ok()
}

fn decode(base64: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(base64.trim_end_matches('='))
}

/// The one ed25519 key of a cross-signing key object: `(key id, public key)`.
fn cross_signing_key(object: &Value) -> Option<(String, String)> {
    let keys = object["keys"].as_object()?;
    let (id, key) = keys.iter().next()?;
    Some((id.clone(), key.as_str()?.to_owned()))
}

/// Adds every signature in `from` to `into`'s `signatures`.
pub fn merge_signatures(into: &mut Value, from: &Value) {
    let Some(signers) = from["signatures"].as_object() else {
        return;
    };
    if !into["signatures"].is_object() {
        into["signatures"] = json!({});
    }
    for (signer, keys) in signers {
        let Some(keys) = keys.as_object() else {
            continue;
        };
        if !into["signatures"][signer].is_object() {
            into["signatures"][signer] = json!({});
        }
        for (key_id, signature) in keys {
            into["signatures"][signer][key_id] = signature.clone();
        }
    }
}

impl Keys {
    pub fn new(db: Db, stream: Arc<Stream>) -> Keys {
        Keys {
            db,
            stream,
            claims: Mutex::new(()),
        }
    }

    pub fn device_keys(&self, user: &UserId, device: &DeviceId) -> Result<Option<Value>> {
        Ok(self
            .db
            .table(Cf::DeviceKeys)
            .get_json(device_key(user, device))?)
    }

    /// Every device's keys of a user, by device id.
    pub fn all_device_keys(&self, user: &UserId) -> Result<BTreeMap<String, Value>> {
        let prefix = Key::new().str(user.as_str());
        let mut keys = BTreeMap::new();
        for (key, value) in self
            .db
            .table(Cf::DeviceKeys)
            .scan_prefix_json::<Value>(&prefix)?
        {
            let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
            if let Some(device) = reader.str() {
                keys.insert(device.to_owned(), value);
            }
        }
        Ok(keys)
    }

    /// Checks and stores a device's identity keys. The first upload fixes them: a later upload
    /// with different keys is refused (a new identity needs a new device).
    fn check_device_keys(&self, user: &UserId, device: &DeviceId, keys: &Value) -> Result<bool> {
        if keys["user_id"].as_str() != Some(user.as_str())
            || keys["device_id"].as_str() != Some(device.as_str())
        {
            return Err(Error::bad_json(
                "device_keys must name the uploading user and device",
            ));
        }
        let key_id = format!("ed25519:{device}");
        let Some(ed25519) = keys["keys"][&key_id].as_str() else {
            return Err(Error::bad_json(format!("device_keys has no {key_id} key")));
        };
        if !signed_by(keys, user.as_str(), &key_id, ed25519) {
            return Err(invalid_signature(
                "device_keys is not signed by the device's own ed25519 key",
            ));
        }
        match self.device_keys(user, device)? {
            Some(existing) if existing["keys"] != keys["keys"] => Err(Error::bad_json(
                "This device already has different identity keys; log in as a new device",
            )),
            Some(existing) if existing["algorithms"] == keys["algorithms"] => Ok(false),
            _ => Ok(true),
        }
    }

    /// `/keys/upload`. Returns whether the device's identity keys are new (a device-list change).
    pub fn upload(
        &self,
        user: &UserId,
        device: &DeviceId,
        device_keys: Option<Value>,
        one_time_keys: Vec<(String, Value)>,
        fallback_keys: Vec<(String, Value)>,
    ) -> Result<bool> {
        let mut batch = self.db.batch();
        let mut changed = false;
        if let Some(keys) = device_keys {
            changed = self.check_device_keys(user, device, &keys)?;
            if changed {
                batch.put_json(Cf::DeviceKeys, device_key(user, device), &keys)?;
            }
        }
        let otks = self.db.table(Cf::OneTimeKeys);
        for (key_id, key) in one_time_keys {
            let stored = device_key(user, device)
                .str(algorithm_of(&key_id))
                .bytes(key_id.as_bytes());
            // Re-uploading a key id with other contents is a client bug the spec forbids.
            if let Some(existing) = otks.get_json::<Value>(&stored)?
                && existing != key
            {
                return Err(Error::bad_json(format!(
                    "One-time key {key_id} was uploaded before with other contents"
                )));
            }
            batch.put_json(Cf::OneTimeKeys, &stored, &key)?;
        }
        for (key_id, key) in fallback_keys {
            let fallback = Fallback {
                key_id: key_id.clone(),
                key,
                used: false,
            };
            batch.put_json(
                Cf::FallbackKeys,
                device_key(user, device).bytes(algorithm_of(&key_id).as_bytes()),
                &fallback,
            )?;
        }
        batch.commit()?;
        Ok(changed)
    }

    /// One-time keys left per algorithm.
    pub fn one_time_key_counts(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<BTreeMap<String, u64>> {
        let prefix = device_key(user, device);
        let mut counts = BTreeMap::new();
        for (key, _) in self.db.table(Cf::OneTimeKeys).scan_prefix(&prefix)? {
            let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
            if let Some(algorithm) = reader.str() {
                *counts.entry(algorithm.to_owned()).or_default() += 1;
            }
        }
        Ok(counts)
    }

    /// Algorithms with a fallback key not yet handed out.
    pub fn unused_fallback_key_types(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> Result<Vec<String>> {
        let prefix = device_key(user, device);
        Ok(self
            .db
            .table(Cf::FallbackKeys)
            .scan_prefix_json::<Fallback>(&prefix)?
            .into_iter()
            .filter(|(_, fallback)| !fallback.used)
            .map(|(key, _)| String::from_utf8_lossy(&key[prefix.as_ref().len()..]).into_owned())
            .collect())
    }

    /// Hands out one one-time key of `algorithm` for a device (deleting it), or its fallback
    /// key when none are left. Claims are serialized so no key goes to two claimers.
    pub fn claim(
        &self,
        user: &UserId,
        device: &DeviceId,
        algorithm: &str,
    ) -> Result<Option<(String, Value)>> {
        let _one_at_a_time = self
            .claims
            .lock()
            .map_err(|_| Error::internal("claims poisoned"))?;
        let prefix = device_key(user, device).str(algorithm);
        let otks = self.db.table(Cf::OneTimeKeys);
        if let Some((key, value)) = otks.scan_prefix(&prefix)?.into_iter().next() {
            let key_id = String::from_utf8_lossy(&key[prefix.as_ref().len()..]).into_owned();
            let value: Value = serde_json::from_slice(&value).map_err(Error::internal)?;
            otks.delete(&key)?;
            return Ok(Some((key_id, value)));
        }
        let fallbacks = self.db.table(Cf::FallbackKeys);
        let key = device_key(user, device).bytes(algorithm.as_bytes());
        let Some(mut fallback) = fallbacks.get_json::<Fallback>(&key)? else {
            return Ok(None);
        };
        if !fallback.used {
            fallback.used = true;
            fallbacks.put_json(&key, &fallback)?;
        }
        Ok(Some((fallback.key_id, fallback.key)))
    }

    /// `(key id, public key)` of a user's stored cross-signing key of `kind`.
    fn cross_signing_public(&self, user: &UserId, kind: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .cross_signing_key(user, kind)?
            .as_ref()
            .and_then(cross_signing_key))
    }

    pub fn cross_signing_key(&self, user: &UserId, kind: &str) -> Result<Option<Value>> {
        Ok(self
            .db
            .table(Cf::CrossSigningKeys)
            .get_json(Key::new().str(user.as_str()).bytes(kind.as_bytes()))?)
    }

    /// Checks and stores cross-signing keys. The self-signing and user-signing keys must be
    /// signed by the master key (the new one, or the stored one).
    pub fn upload_cross_signing(
        &self,
        user: &UserId,
        master: Option<Value>,
        self_signing: Option<Value>,
        user_signing: Option<Value>,
    ) -> Result<()> {
        let check_shape = |key: &Value, usage: &str| -> Result<()> {
            let usages = key["usage"].as_array().cloned().unwrap_or_default();
            if key["user_id"].as_str() != Some(user.as_str())
                || !usages.iter().any(|u| u == usage)
                || cross_signing_key(key).is_none()
            {
                return Err(Error::bad_json(format!(
                    "The {usage} key must be for {user}, have usage {usage} and one key"
                )));
            }
            Ok(())
        };
        if let Some(master) = &master {
            check_shape(master, MASTER)?;
        }
        let master_key = match &master {
            Some(master) => Some(master.clone()),
            None => self.cross_signing_key(user, MASTER)?,
        };
        for (key, usage) in [(&self_signing, SELF_SIGNING), (&user_signing, USER_SIGNING)] {
            let Some(key) = key else { continue };
            check_shape(key, usage)?;
            let (master_id, master_public) = master_key
                .as_ref()
                .and_then(cross_signing_key)
                .ok_or_else(|| Error::bad_json("Upload a master key first"))?;
            if !signed_by(key, user.as_str(), &master_id, &master_public) {
                return Err(invalid_signature(&format!(
                    "The {usage} key is not signed by the master key"
                )));
            }
        }
        let mut batch = self.db.batch();
        for (key, kind) in [
            (master, MASTER),
            (self_signing, SELF_SIGNING),
            (user_signing, USER_SIGNING),
        ] {
            if let Some(key) = key {
                batch.put_json(
                    Cf::CrossSigningKeys,
                    Key::new().str(user.as_str()).bytes(kind.as_bytes()),
                    &key,
                )?;
            }
        }
        batch.commit()?;
        Ok(())
    }

    /// Signatures a user's user-signing key made on another user's master key: seen only by
    /// the signer.
    pub fn private_signatures(&self, signer: &UserId, target: &UserId) -> Result<Option<Value>> {
        Ok(self
            .db
            .table(Cf::CrossSigningSignatures)
            .get_json(Key::new().str(signer.as_str()).bytes(target.as_bytes()))?)
    }

    /// `/keys/signatures/upload` for one signed object. `key_id` names the object: a device id
    /// or a cross-signing public key. Returns whether anything was stored.
    pub fn add_signatures(
        &self,
        signer: &UserId,
        target: &UserId,
        key_id: &str,
        signed: &Value,
    ) -> Result<()> {
        let fail = |message: &str| invalid_signature(message);
        // What is being signed, and by which of the signer's keys it must be.
        if let Some(mut device) = self.device_keys(target, &ruma::OwnedDeviceId::from(key_id))? {
            if signer != target {
                return Err(fail(
                    "Only the owner's self-signing key signs their devices",
                ));
            }
            let (ssk_id, ssk) = self
                .cross_signing_public(signer, SELF_SIGNING)?
                .ok_or_else(|| fail("No self-signing key to check the signature with"))?;
            if !same_signed_content(&device, signed)
                || !signed_by(signed, signer.as_str(), &ssk_id, &ssk)
            {
                return Err(fail("Not a valid signature by the self-signing key"));
            }
            merge_signatures(&mut device, signed);
            self.db.table(Cf::DeviceKeys).put_json(
                device_key(target, &ruma::OwnedDeviceId::from(key_id)),
                &device,
            )?;
            return Ok(());
        }
        let master = self.cross_signing_key(target, MASTER)?;
        let Some(mut master) =
            master.filter(|m| cross_signing_key(m).is_some_and(|(id, _)| id.ends_with(key_id)))
        else {
            return Err(fail("Unknown key"));
        };
        if !same_signed_content(&master, signed) {
            return Err(fail("The signed object differs from the stored key"));
        }
        if signer == target {
            // A device of the owner signs its master key.
            let devices = self.all_device_keys(signer)?;
            let valid = devices.iter().any(|(device, keys)| {
                let id = format!("ed25519:{device}");
                keys["keys"][&id]
                    .as_str()
                    .is_some_and(|public| signed_by(signed, signer.as_str(), &id, public))
            });
            if !valid {
                return Err(fail("Not a valid signature by one of the owner's devices"));
            }
            merge_signatures(&mut master, signed);
            self.db.table(Cf::CrossSigningKeys).put_json(
                Key::new().str(target.as_str()).bytes(MASTER.as_bytes()),
                &master,
            )?;
            return Ok(());
        }
        // Another user's master key, signed by the signer's user-signing key.
        let (usk_id, usk) = self
            .cross_signing_public(signer, USER_SIGNING)?
            .ok_or_else(|| fail("No user-signing key to check the signature with"))?;
        if !signed_by(signed, signer.as_str(), &usk_id, &usk) {
            return Err(fail("Not a valid signature by the user-signing key"));
        }
        let mut only_signer =
            json!({"signatures": {signer.as_str(): signed["signatures"][signer.as_str()].clone()}});
        if let Some(existing) = self.private_signatures(signer, target)? {
            merge_signatures(&mut only_signer, &existing);
            merge_signatures(&mut only_signer, signed);
        }
        self.db.table(Cf::CrossSigningSignatures).put_json(
            Key::new().str(signer.as_str()).bytes(target.as_bytes()),
            &only_signer,
        )?;
        Ok(())
    }

    /// Records that `user`'s keys changed; the caller names who to wake.
    fn mark_changed<'a>(
        &self,
        user: &UserId,
        audience: impl IntoIterator<Item = &'a UserId>,
    ) -> Result<()> {
        let mut ticket = self.stream.begin()?;
        ticket.concerns(audience);
        self.db
            .table(Cf::KeyChanges)
            .put(Key::new().u64(ticket.position), user.as_bytes())?;
        Ok(())
    }

    /// Users whose keys changed at positions in `(since, upto]`.
    pub fn changed_between(&self, since: u64, upto: u64) -> Result<BTreeSet<OwnedUserId>> {
        let start = Key::new().u64(since.saturating_add(1));
        let mut users = BTreeSet::new();
        for (key, user) in
            self.db
                .table(Cf::KeyChanges)
                .scan_from(&[], start.as_ref(), true, usize::MAX)?
        {
            if KeyReader::new(&key)
                .u64()
                .is_none_or(|position| position > upto)
            {
                break;
            }
            if let Ok(user) = OwnedUserId::try_from(String::from_utf8_lossy(&user).as_ref()) {
                users.insert(user);
            }
        }
        Ok(users)
    }
}

/// Adds the removal of a device's keys to `batch` (the device is being deleted).
pub fn remove_device(
    db: &Db,
    batch: &mut Batch<'_>,
    user: &UserId,
    device: &DeviceId,
) -> Result<()> {
    let prefix = device_key(user, device);
    batch.delete(Cf::DeviceKeys, &prefix);
    for cf in [Cf::OneTimeKeys, Cf::FallbackKeys] {
        for (key, _) in db.table(cf).scan_prefix(&prefix)? {
            batch.delete(cf, &key);
        }
    }
    Ok(())
}

/// Whether two versions of a signed object differ only in their signatures (and `unsigned`).
fn same_signed_content(stored: &Value, signed: &Value) -> bool {
    let strip = |value: &Value| -> Map<String, Value> {
        let mut object = value.as_object().cloned().unwrap_or_default();
        object.remove("signatures");
        object.remove("unsigned");
        object
    };
    strip(stored) == strip(signed)
}

fn invalid_signature(message: &str) -> Error {
    Error::custom(
        http::StatusCode::BAD_REQUEST,
        "M_INVALID_SIGNATURE",
        message,
    )
}

impl Services {
    /// A user's device or cross-signing keys changed: everyone who shares a room with them
    /// (and their own other devices) learns of it in `device_lists.changed`.
    pub fn device_keys_changed(&self, user: &UserId) -> Result<()> {
        let peers = self.rooms.room_peers(user)?;
        self.keys
            .mark_changed(user, peers.iter().map(|peer| &**peer))
    }

    /// `device_lists` for a sync or `/keys/changes` over `(since, upto]`: users whose keys
    /// changed and who share a room with `user` (plus people they newly share a room with),
    /// and users they no longer share any room with.
    pub fn device_list_changes(
        &self,
        user: &UserId,
        since: u64,
        upto: u64,
    ) -> Result<(BTreeSet<OwnedUserId>, BTreeSet<OwnedUserId>)> {
        use ruma::events::room::member::MembershipState::Join;
        // Whose keys changed in the window (usually few), and whose membership in the user's
        // rooms moved (only rooms with events since the token can have such moves).
        let keys_changed = self.keys.changed_between(since, upto)?;
        let mut moved = BTreeSet::new();
        for (room_id, record) in self.rooms.rooms_of(user)? {
            let quiet = self
                .rooms
                .room(&room_id)?
                .is_some_and(|room| room.last_position != 0 && room.last_position <= since);
            let user_moved = record.position > since && record.position <= upto;
            if quiet || (!user_moved && record.membership != Join) {
                continue;
            }
            for (member, member_record) in self.rooms.members_of(&room_id)? {
                let member_moved = member_record.position > since && member_record.position <= upto;
                // When the user joined or left, everyone joined there is new (or gone) to them.
                if member != user
                    && (member_moved || (user_moved && member_record.membership == Join))
                {
                    moved.insert(member);
                }
            }
        }
        let mine = self.rooms.joined_room_ids(user)?;
        let mut changed = BTreeSet::new();
        let mut left = BTreeSet::new();
        for other in keys_changed.iter().chain(&moved) {
            let shares = other == user || !self.rooms.joined_room_ids(other)?.is_disjoint(&mine);
            if shares {
                changed.insert(other.clone());
            } else if moved.contains(other) {
                left.insert(other.clone());
            }
        }
        Ok((changed, left))
    }
}
