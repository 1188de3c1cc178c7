//! Rooms: building, authorizing, signing and storing events in each room's DAG, and reading
//! state and timelines back.
//!
//! Appending an event: take the room's lock → build it (prev_events = forward extremities,
//! auth_events chosen from the current state, depth) → hash and sign → derive the event id →
//! check the room version's auth rules against the state before it → one batch (PDU, index,
//! state snapshot pointer, extremities, membership index, transaction id) → release the lock.

pub mod access;
pub mod create;
pub mod membership;
pub mod pdu;
pub mod purge;
pub mod short;
pub mod state;
pub mod upgrade;

use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue, to_canonical_value};
use ruma::events::room::member::MembershipState;
use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::{RoomIdFormatVersion, RoomVersionRules};
use ruma::signatures::{hash_and_sign_event, reference_hash};
use ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedServerName, OwnedUserId,
    RoomId, RoomVersionId, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::service::signing_key::SigningKey;
use crate::service::stream::{Stream, Ticket};
use crate::storage::{Cf, Db, Key, KeyReader};
use pdu::{Pdu, StoredPdu, Transaction};
use short::ShortIds;
use state::Snapshots;

/// The spec's limit on a PDU's size, in bytes of canonical JSON.
pub const MAX_PDU_BYTES: usize = 65_536;
/// At most this many prev_events per event.
const MAX_PREV_EVENTS: usize = 20;

/// What the server knows about a room as a whole.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomRecord {
    pub room_id: OwnedRoomId,
    pub short: u64,
    pub version: RoomVersionId,
    /// The current state (after the forward extremities).
    pub snapshot: u64,
    pub extremities: Vec<OwnedEventId>,
    pub depth: u64,
    /// Stream position of the latest event (0 in records written before it was kept), so a
    /// sync can pass over a room with nothing new without reading its timeline.
    #[serde(default)]
    pub last_position: u64,
}

/// What `append` did: the event's id and, unless a retried transaction found its earlier
/// event, the new room record, the stored event and its unpublished stream position.
pub struct Appended<'a> {
    pub event_id: OwnedEventId,
    pub new: Option<(RoomRecord, StoredPdu, Ticket<'a>)>,
}

/// An event a local user wants to add to a room.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: TimelineEventType,
    pub content: Value,
    pub state_key: Option<String>,
    pub redacts: Option<OwnedEventId>,
}

impl NewEvent {
    pub fn state(kind: StateEventType, state_key: impl Into<String>, content: Value) -> Self {
        NewEvent {
            kind: kind.to_string().into(),
            content,
            state_key: Some(state_key.into()),
            redacts: None,
        }
    }

    pub fn message(kind: TimelineEventType, content: Value) -> Self {
        NewEvent {
            kind,
            content,
            state_key: None,
            redacts: None,
        }
    }
}

/// A user's membership in a room as indexed for quick lookups.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MembershipRecord {
    pub membership: MembershipState,
    pub position: u64,
    pub event_id: OwnedEventId,
    /// The display name in the member event (push rules match on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub displayname: Option<String>,
}

pub struct Rooms {
    db: Db,
    server_name: OwnedServerName,
    signing_key: SigningKey,
    pub short: ShortIds,
    pub snapshots: Snapshots,
    stream: Arc<Stream>,
    locks: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Rooms {
    pub fn new(db: Db, server_name: OwnedServerName, stream: Arc<Stream>) -> Result<Self> {
        Ok(Rooms {
            signing_key: SigningKey::load_or_generate(&db)?,
            short: ShortIds::new(db.clone())?,
            snapshots: Snapshots::new(db.clone())?,
            stream,
            locks: Mutex::new(HashMap::new()),
            server_name,
            db,
        })
    }

    /// The lock that serializes event creation in one room.
    pub fn lock(&self, room_id: &RoomId) -> Result<Arc<tokio::sync::Mutex<()>>> {
        let mut locks = self
            .locks
            .lock()
            .map_err(|_| Error::internal("room locks poisoned"))?;
        Ok(locks.entry(room_id.to_owned()).or_default().clone())
    }

    pub fn room(&self, room_id: &RoomId) -> Result<Option<RoomRecord>> {
        Ok(self.db.table(Cf::Rooms).get_json(room_id.as_str())?)
    }

    /// The room, or `M_NOT_FOUND`.
    pub fn existing_room(&self, room_id: &RoomId) -> Result<RoomRecord> {
        self.room(room_id)?
            .ok_or_else(|| Error::not_found(format!("Unknown room {room_id}")))
    }

    /// Creates a room from its `m.room.create` content; the room id comes from the version's
    /// format (random for v1–11, the create event's hash for v12+). The caller holds no lock:
    /// nobody else can know the new room yet.
    pub fn create(
        &self,
        creator: &UserId,
        version: RoomVersionId,
        mut content: Value,
    ) -> Result<(OwnedRoomId, OwnedEventId)> {
        let rules = rules_of(&version)?;
        let object = content
            .as_object_mut()
            .ok_or_else(|| Error::bad_json("creation_content must be an object"))?;
        object.insert("room_version".into(), Value::String(version.to_string()));
        if !rules.authorization.use_room_create_sender {
            object.insert("creator".into(), Value::String(creator.to_string()));
        }
        let room_id = match rules.room_id_format {
            RoomIdFormatVersion::V1 => Some(RoomId::new_v1(&self.server_name)),
            _ => None,
        };
        let new = NewEvent::state(StateEventType::RoomCreate, "", content);
        let (json, event_id) =
            self.build(&rules, room_id.as_deref(), creator, &new, &[], &[], 1)?;
        let room_id = match room_id {
            Some(room_id) => room_id,
            None => OwnedRoomId::try_from(format!("!{}", event_id.localpart()))
                .map_err(Error::internal)?,
        };
        let short_room = self.short.room(&room_id)?;
        if self.room(&room_id)?.is_some() {
            return Err(Error::internal(format!("room {room_id} exists already")));
        }
        let pdu = parse_pdu(&json, &event_id)?;
        ruma::state_res::check_state_independent_auth_rules(
            &rules.authorization,
            &pdu,
            |_: &EventId| None::<Pdu>,
        )
        .map_err(|e| Error::forbidden(format!("Create event rejected: {e}")))?;
        let room = RoomRecord {
            room_id: room_id.clone(),
            short: short_room,
            version,
            snapshot: Snapshots::EMPTY,
            extremities: vec![],
            depth: 0,
            last_position: 0,
        };
        // The create event alone concerns nobody's sync: the creator's join comes next.
        self.commit(&room_id, room, pdu, json, None)?;
        Ok((room_id, event_id))
    }

    /// Builds, authorizes and stores an event from a local user. Takes the room's lock.
    ///
    /// The stored event comes back with its stream position still unpublished: the caller
    /// records what else belongs to it (who it notifies, who to wake) before syncs can see it.
    pub async fn append(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        new: NewEvent,
        transaction: Option<Transaction>,
    ) -> Result<Appended<'_>> {
        let lock = self.lock(room_id)?;
        let _guard = lock.lock().await;
        // A retried send (same device, same transaction id) gets the event it already made.
        if let Some(transaction) = &transaction
            && let Some(event_id) = self.transaction_event(sender, transaction)?
        {
            return Ok(Appended {
                event_id,
                new: None,
            });
        }
        let room = self.existing_room(room_id)?;
        let rules = rules_of(&room.version)?;
        let state = self.snapshots.state(room.snapshot)?;

        let content = serde_json::value::to_raw_value(&new.content).map_err(Error::internal)?;
        let auth_types = ruma::state_res::auth_types_for_event(
            &new.kind,
            sender,
            new.state_key.as_deref(),
            &content,
            &rules.authorization,
        )
        .map_err(Error::bad_json)?;
        let mut auth_events = Vec::new();
        for (kind, state_key) in auth_types {
            if let Some(short_key) = self.short.existing_state_key(&kind, &state_key)?
                && let Some(short_event) = state.get(&short_key)
            {
                auth_events.push(self.short.event_id(*short_event)?);
            }
        }
        let prev_events: Vec<OwnedEventId> = room
            .extremities
            .iter()
            .take(MAX_PREV_EVENTS)
            .cloned()
            .collect();
        let (json, event_id) = self.build(
            &rules,
            Some(room_id),
            sender,
            &new,
            &prev_events,
            &auth_events,
            room.depth + 1,
        )?;
        let pdu = parse_pdu(&json, &event_id)?;

        let fetch_event = |id: &EventId| {
            self.pdu(id)
                .ok()
                .flatten()
                .and_then(|stored| stored.pdu().ok())
        };
        ruma::state_res::check_state_independent_auth_rules(
            &rules.authorization,
            &pdu,
            fetch_event,
        )
        .map_err(|e| Error::forbidden(e.to_string()))?;
        let fetch_state = |kind: &StateEventType, state_key: &str| {
            let short_key = self
                .short
                .existing_state_key(kind, state_key)
                .ok()
                .flatten()?;
            let short_event = state.get(&short_key)?;
            let event_id = self.short.event_id(*short_event).ok()?;
            fetch_event(&event_id)
        };
        ruma::state_res::check_state_dependent_auth_rules(&rules.authorization, &pdu, fetch_state)
            .map_err(|e| Error::forbidden(format!("Event not allowed: {e}")))?;

        let (room, stored, ticket) = self.commit(room_id, room, pdu, json, transaction)?;
        Ok(Appended {
            event_id,
            new: Some((room, stored, ticket)),
        })
    }

    /// Hashes, signs and names a new event. Returns its JSON (without `event_id`) and its id.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        rules: &RoomVersionRules,
        room_id: Option<&RoomId>,
        sender: &UserId,
        new: &NewEvent,
        prev_events: &[OwnedEventId],
        auth_events: &[OwnedEventId],
        depth: u64,
    ) -> Result<(CanonicalJsonObject, OwnedEventId)> {
        let mut content = new.content.clone();
        if !content.is_object() {
            return Err(Error::bad_json("Event content must be a JSON object"));
        }
        let mut event = serde_json::json!({
            "type": new.kind.to_string(),
            "sender": sender,
            "origin_server_ts": MilliSecondsSinceUnixEpoch::now(),
            "depth": depth,
            "prev_events": prev_events,
            "auth_events": auth_events,
        });
        if let Some(room_id) = room_id {
            event["room_id"] = Value::String(room_id.to_string());
        }
        if let Some(state_key) = &new.state_key {
            event["state_key"] = Value::String(state_key.clone());
        }
        if let Some(redacts) = &new.redacts {
            if rules.redaction.content_field_redacts {
                content["redacts"] = Value::String(redacts.to_string());
            }
            event["redacts"] = Value::String(redacts.to_string());
        }
        event["content"] = content;
        let mut object = match to_canonical_value(&event)
            .map_err(|e| Error::bad_json(format!("Event is not canonical JSON: {e}")))?
        {
            CanonicalJsonValue::Object(object) => object,
            _ => return Err(Error::internal("event is not an object")),
        };
        hash_and_sign_event(
            self.server_name.as_str(),
            &self.signing_key.key_pair,
            &mut object,
            &rules.redaction,
        )
        .map_err(|e| match e {
            ruma::signatures::JsonError::PduTooLarge => {
                Error::too_large(format!("Event is larger than {MAX_PDU_BYTES} bytes"))
            }
            other => Error::bad_json(format!("Cannot sign event: {other}")),
        })?;
        let size = serde_json::to_vec(&object).map_err(Error::internal)?.len();
        if size > MAX_PDU_BYTES {
            return Err(Error::too_large(format!(
                "Event is {size} bytes; the limit is {MAX_PDU_BYTES}"
            )));
        }
        let hash = reference_hash(&object, rules).map_err(|e| Error::too_large(e.to_string()))?;
        let event_id = OwnedEventId::try_from(format!("${hash}")).map_err(Error::internal)?;
        Ok((object, event_id))
    }

    /// Stores an authorized event: the PDU, its index, the new state and extremities, the
    /// membership index and the transaction id, in one batch.
    /// Returns the updated room record, the stored event and its (unpublished) position.
    fn commit(
        &self,
        room_id: &RoomId,
        mut room: RoomRecord,
        pdu: Pdu,
        json: CanonicalJsonObject,
        transaction: Option<Transaction>,
    ) -> Result<(RoomRecord, StoredPdu, Ticket<'_>)> {
        let ticket = self.stream.begin()?;
        let position = ticket.position;
        let short_event = self.short.event(&pdu.event_id)?;
        let state_before = room.snapshot;
        let mut replaces_state = None;
        if let Some(state_key) = &pdu.state_key {
            let kind = StateEventType::from(pdu.kind.to_string());
            let short_key = self.short.state_key(&kind, state_key)?;
            if let Some(previous) = self.snapshots.state(state_before)?.get(&short_key) {
                replaces_state = Some(self.short.event_id(*previous)?);
            }
            room.snapshot = self
                .snapshots
                .derive(state_before, &[(short_key, short_event)])?;
        }
        room.extremities = vec![pdu.event_id.clone()];
        room.last_position = position;
        room.depth = u64::from(pdu.depth);

        let stored = StoredPdu {
            event_id: pdu.event_id.clone(),
            json,
            position,
            state_before,
            transaction: transaction.clone(),
            replaces_state,
            redacted_by: None,
        };
        let mut batch = self.db.batch();
        let pdu_key = Key::new().u64(room.short).u64(position);
        batch.put_json(Cf::Pdus, &pdu_key, &stored)?;
        batch.put(Cf::EventIndex, pdu.event_id.as_bytes(), &pdu_key);
        if pdu.kind == TimelineEventType::RoomMember
            && let Some(target) = pdu.state_key.as_deref()
        {
            let membership = membership_of(&stored.content())?;
            let record = MembershipRecord {
                membership: membership.clone(),
                position,
                event_id: pdu.event_id.clone(),
                displayname: stored
                    .content()
                    .get("displayname")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
            batch.put_json(
                Cf::UserRooms,
                Key::new().str(target).bytes(room_id.as_bytes()),
                &record,
            )?;
            batch.put_json(
                Cf::RoomMembers,
                Key::new().str(room_id.as_str()).bytes(target.as_bytes()),
                &record,
            )?;
        }
        let content = stored.content();
        for entry in crate::service::search::terms_of(pdu.kind.to_string().as_str(), &content) {
            batch.put(
                Cf::SearchTerms,
                Key::new()
                    .str(&entry.term)
                    .str(entry.field)
                    .u64(room.short)
                    .u64(position),
                entry.value(),
            );
        }
        if let Some((rel_type, parent)) = crate::service::relations::relation_of(&content) {
            batch.put(
                Cf::Relations,
                Key::new().str(&parent).str(&rel_type).u64(position),
                room.short.to_be_bytes(),
            );
            if rel_type == "m.thread" {
                batch.put(
                    Cf::Threads,
                    Key::new().u64(room.short).bytes(parent.as_bytes()),
                    position.to_be_bytes(),
                );
            }
        }
        if let Some(transaction) = &transaction {
            batch.put(
                Cf::TxnIds,
                txn_key(&pdu.sender, transaction),
                pdu.event_id.as_bytes(),
            );
        }
        batch.put_json(Cf::Rooms, room_id.as_str(), &room)?;
        batch.commit()?;
        tracing::debug!(room = %room_id, event = %pdu.event_id, kind = %pdu.kind, position, "event appended");
        // Readers see this position once the caller drops the ticket (the batch is written).
        Ok((room, stored, ticket))
    }

    /// A stored event by id.
    pub fn pdu(&self, event_id: &EventId) -> Result<Option<StoredPdu>> {
        let Some(key) = self.db.table(Cf::EventIndex).get(event_id.as_bytes())? else {
            return Ok(None);
        };
        Ok(self.db.table(Cf::Pdus).get_json(key)?)
    }

    /// The room an indexed event belongs to is implied by its key; this checks it.
    pub fn pdu_in_room(&self, room: &RoomRecord, event_id: &EventId) -> Result<Option<StoredPdu>> {
        let Some(key) = self.db.table(Cf::EventIndex).get(event_id.as_bytes())? else {
            return Ok(None);
        };
        if KeyReader::new(&key).u64() != Some(room.short) {
            return Ok(None);
        }
        Ok(self.db.table(Cf::Pdus).get_json(key)?)
    }

    /// The event a device already sent with this transaction id, if any.
    pub fn transaction_event(
        &self,
        sender: &UserId,
        transaction: &Transaction,
    ) -> Result<Option<OwnedEventId>> {
        let Some(bytes) = self
            .db
            .table(Cf::TxnIds)
            .get(txn_key(sender, transaction))?
        else {
            return Ok(None);
        };
        Ok(Some(
            OwnedEventId::try_from(String::from_utf8(bytes).map_err(Error::internal)?)
                .map_err(Error::internal)?,
        ))
    }

    /// The state event `(kind, state_key)` in a snapshot.
    pub fn state_event_at(
        &self,
        snapshot: u64,
        kind: &StateEventType,
        state_key: &str,
    ) -> Result<Option<StoredPdu>> {
        let Some(short_key) = self.short.existing_state_key(kind, state_key)? else {
            return Ok(None);
        };
        let Some(short_event) = self.snapshots.state(snapshot)?.get(&short_key).copied() else {
            return Ok(None);
        };
        self.pdu(&self.short.event_id(short_event)?)
    }

    /// Every state event in a snapshot.
    pub fn full_state_at(&self, snapshot: u64) -> Result<Vec<StoredPdu>> {
        let state = self.snapshots.state(snapshot)?;
        let mut events = Vec::with_capacity(state.len());
        for short_event in state.values() {
            if let Some(pdu) = self.pdu(&self.short.event_id(*short_event)?)? {
                events.push(pdu);
            }
        }
        events.sort_by_key(|pdu| pdu.position);
        Ok(events)
    }

    /// The snapshot after an event: the one before it, plus the event itself if it is state.
    pub fn snapshot_after(&self, room: &RoomRecord, pdu: &StoredPdu) -> Result<u64> {
        // Events are appended in order, so the snapshot after an event is the one before the next
        // event in the timeline (or the current one if it is the latest).
        let next = self.timeline(room, Some(pdu.position + 1), true, 1)?;
        Ok(next
            .first()
            .map(|next| next.state_before)
            .unwrap_or(room.snapshot))
    }

    /// The state at a stream position: before the room's first event at or after it (or the
    /// current state if there is none).
    pub fn snapshot_at(&self, room: &RoomRecord, position: u64) -> Result<u64> {
        let next = self.timeline(room, Some(position), true, 1)?;
        Ok(next.first().map_or(room.snapshot, |pdu| pdu.state_before))
    }

    /// The state events in `to` that differ from `from`.
    pub fn state_difference(&self, from: u64, to: u64) -> Result<Vec<StoredPdu>> {
        let before = self.snapshots.state(from)?;
        let after = self.snapshots.state(to)?;
        let mut events = Vec::new();
        for (key, event) in after.iter() {
            if before.get(key) != Some(event)
                && let Some(pdu) = self.pdu(&self.short.event_id(*event)?)?
            {
                events.push(pdu);
            }
        }
        events.sort_by_key(|pdu| pdu.position);
        Ok(events)
    }

    /// A user's indexed membership in a room.
    pub fn membership(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<MembershipRecord>> {
        Ok(self
            .db
            .table(Cf::UserRooms)
            .get_json(Key::new().str(user_id.as_str()).bytes(room_id.as_bytes()))?)
    }

    /// Every room a user has a membership in, with it.
    pub fn rooms_of(&self, user_id: &UserId) -> Result<Vec<(OwnedRoomId, MembershipRecord)>> {
        let prefix = Key::new().str(user_id.as_str());
        let mut rooms = Vec::new();
        for (key, record) in self
            .db
            .table(Cf::UserRooms)
            .scan_prefix_json::<MembershipRecord>(&prefix)?
        {
            let room_id =
                std::str::from_utf8(&key[prefix.as_ref().len()..]).map_err(Error::internal)?;
            rooms.push((
                OwnedRoomId::try_from(room_id).map_err(Error::internal)?,
                record,
            ));
        }
        Ok(rooms)
    }

    /// The rooms a user is joined to.
    pub fn joined_room_ids(
        &self,
        user_id: &UserId,
    ) -> Result<std::collections::HashSet<OwnedRoomId>> {
        Ok(self
            .rooms_of(user_id)?
            .into_iter()
            .filter(|(_, record)| record.membership == MembershipState::Join)
            .map(|(room_id, _)| room_id)
            .collect())
    }

    /// Whether two users are joined to at least one common room (or are the same user).
    pub fn share_a_room(&self, a: &UserId, b: &UserId) -> Result<bool> {
        Ok(a == b
            || !self
                .joined_room_ids(a)?
                .is_disjoint(&self.joined_room_ids(b)?))
    }

    /// Every user with a membership in a room, with it.
    pub fn members_of(&self, room_id: &RoomId) -> Result<Vec<(OwnedUserId, MembershipRecord)>> {
        let prefix = Key::new().str(room_id.as_str());
        let mut members = Vec::new();
        for (key, record) in self
            .db
            .table(Cf::RoomMembers)
            .scan_prefix_json::<MembershipRecord>(&prefix)?
        {
            let user_id =
                std::str::from_utf8(&key[prefix.as_ref().len()..]).map_err(Error::internal)?;
            members.push((
                OwnedUserId::try_from(user_id).map_err(Error::internal)?,
                record,
            ));
        }
        Ok(members)
    }

    /// The users joined to a room.
    pub fn joined_members(&self, room_id: &RoomId) -> Result<Vec<OwnedUserId>> {
        Ok(self
            .members_of(room_id)?
            .into_iter()
            .filter(|(_, record)| record.membership == MembershipState::Join)
            .map(|(user, _)| user)
            .collect())
    }

    /// Everyone joined to a room `user` is joined to, `user` included: who sees their presence.
    pub fn room_peers(&self, user: &UserId) -> Result<std::collections::HashSet<OwnedUserId>> {
        let mut peers = std::collections::HashSet::from([user.to_owned()]);
        for room_id in self.joined_room_ids(user)? {
            peers.extend(self.joined_members(&room_id)?);
        }
        Ok(peers)
    }

    /// Up to `limit` events of a room's timeline from position `from` (inclusive; `None` = the
    /// end in that direction), forwards or backwards.
    pub fn timeline(
        &self,
        room: &RoomRecord,
        from: Option<u64>,
        forward: bool,
        limit: usize,
    ) -> Result<Vec<StoredPdu>> {
        let prefix = Key::new().u64(room.short);
        let start = match (from, forward) {
            (Some(position), _) => Key::new().u64(room.short).u64(position),
            (None, true) => Key::new().u64(room.short).u64(0),
            (None, false) => Key::new().u64(room.short).u64(u64::MAX),
        };
        self.db
            .table(Cf::Pdus)
            .scan_from(prefix.as_ref(), start.as_ref(), forward, limit)?
            .into_iter()
            .map(|(_, value)| serde_json::from_slice(&value).map_err(Error::internal))
            .collect()
    }

    /// The event at a stream position of a room (by the room's short id).
    pub fn pdu_at(&self, room_short: u64, position: u64) -> Result<Option<StoredPdu>> {
        Ok(self
            .db
            .table(Cf::Pdus)
            .get_json(Key::new().u64(room_short).u64(position))?)
    }

    /// Marks `target` redacted by `redaction`: its stored content is stripped per the room
    /// version's redaction algorithm, for every reader.
    pub fn apply_redaction(
        &self,
        room: &RoomRecord,
        target: &EventId,
        redaction: &EventId,
    ) -> Result<()> {
        let Some(key) = self.db.table(Cf::EventIndex).get(target.as_bytes())? else {
            return Ok(());
        };
        let Some(mut stored) = self.db.table(Cf::Pdus).get_json::<StoredPdu>(&key)? else {
            return Ok(());
        };
        let rules = rules_of(&room.version)?;
        stored.json = ruma::canonical_json::redact(stored.json, &rules.redaction, None)
            .map_err(Error::internal)?;
        stored.redacted_by = Some(redaction.to_owned());
        self.db.table(Cf::Pdus).put_json(&key, &stored)?;
        Ok(())
    }

    pub fn current_position(&self) -> u64 {
        self.stream.current()
    }
}

pub fn rules_of(version: &RoomVersionId) -> Result<RoomVersionRules> {
    version.rules().ok_or_else(|| {
        Error::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::UnsupportedRoomVersion,
            format!("Unsupported room version {version}"),
        )
    })
}

fn parse_pdu(json: &CanonicalJsonObject, event_id: &EventId) -> Result<Pdu> {
    let mut object = json.clone();
    object.insert(
        "event_id".into(),
        CanonicalJsonValue::String(event_id.to_string()),
    );
    let value = serde_json::to_value(object).map_err(Error::internal)?;
    serde_json::from_value(value).map_err(|e| Error::bad_json(format!("Invalid event: {e}")))
}

fn membership_of(content: &Value) -> Result<MembershipState> {
    let membership = content
        .get("membership")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_json("m.room.member needs a membership"))?;
    Ok(MembershipState::from(membership))
}

fn txn_key(sender: &UserId, transaction: &Transaction) -> Key {
    Key::new()
        .str(sender.as_str())
        .str(&transaction.device_id)
        .bytes(transaction.txn_id.as_bytes())
}

/// Checks the content of state events whose shape the spec defines (and the auth rules read),
/// so a wrongly typed power level or join rule is a 400 `M_BAD_JSON`, not a broken room.
pub fn validate_state_content(kind: &StateEventType, content: &Value) -> Result<()> {
    use ruma::events::room::{
        canonical_alias::RoomCanonicalAliasEventContent, guest_access::RoomGuestAccessEventContent,
        history_visibility::RoomHistoryVisibilityEventContent,
        join_rules::RoomJoinRulesEventContent, member::RoomMemberEventContent,
        name::RoomNameEventContent, power_levels::RoomPowerLevelsEventContent,
        topic::RoomTopicEventContent,
    };
    fn check<T: serde::de::DeserializeOwned>(kind: &StateEventType, content: &Value) -> Result<()> {
        serde_json::from_value::<T>(content.clone())
            .map(drop)
            .map_err(|e| Error::bad_json(format!("Invalid {kind} content: {e}")))
    }
    if !content.is_object() {
        return Err(Error::bad_json("Event content must be a JSON object"));
    }
    match kind {
        StateEventType::RoomPowerLevels => {
            // Integers only (room versions 10+ require them; strings are not accepted here).
            for key in [
                "ban",
                "events_default",
                "invite",
                "kick",
                "redact",
                "state_default",
                "users_default",
            ] {
                if let Some(value) = content.get(key)
                    && !value.is_i64()
                {
                    return Err(Error::bad_json(format!(
                        "Power level `{key}` must be an integer"
                    )));
                }
            }
            for map in ["events", "users", "notifications"] {
                if let Some(value) = content.get(map) {
                    let ok = value
                        .as_object()
                        .is_some_and(|entries| entries.values().all(Value::is_i64));
                    if !ok {
                        return Err(Error::bad_json(format!(
                            "Power levels `{map}` must map to integers"
                        )));
                    }
                }
            }
            check::<RoomPowerLevelsEventContent>(kind, content)
        }
        StateEventType::RoomJoinRules => check::<RoomJoinRulesEventContent>(kind, content),
        StateEventType::RoomHistoryVisibility => {
            check::<RoomHistoryVisibilityEventContent>(kind, content)
        }
        StateEventType::RoomGuestAccess => check::<RoomGuestAccessEventContent>(kind, content),
        StateEventType::RoomName => check::<RoomNameEventContent>(kind, content),
        StateEventType::RoomTopic => check::<RoomTopicEventContent>(kind, content),
        StateEventType::RoomMember => check::<RoomMemberEventContent>(kind, content),
        StateEventType::RoomCanonicalAlias => {
            check::<RoomCanonicalAliasEventContent>(kind, content)
        }
        _ => Ok(()),
    }
}
