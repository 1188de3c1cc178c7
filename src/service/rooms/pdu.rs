//! The PDU: an event as it lives in the room DAG (signed, hashed, with prev and auth events),
//! and its client-facing form.

use ruma::api::client::filter::RoomEventFilter;
use ruma::events::TimelineEventType;
use ruma::{
    CanonicalJsonObject, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId,
    RoomId, UInt, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue as RawJsonValue;
use serde_json::{Map, Value, json};

/// The fields of a PDU that the server reads. The full signed JSON is kept beside it in
/// [`StoredPdu`], so nothing a peer signed is lost by this projection.
#[derive(Clone, Debug, Deserialize)]
pub struct Pdu {
    pub event_id: OwnedEventId,
    /// Absent only on `m.room.create` in room versions whose room id is the create event's hash.
    pub room_id: Option<OwnedRoomId>,
    pub sender: OwnedUserId,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    #[serde(rename = "type")]
    pub kind: TimelineEventType,
    pub content: Box<RawJsonValue>,
    #[serde(default)]
    pub state_key: Option<String>,
    #[serde(default, deserialize_with = "event_references")]
    pub prev_events: Vec<OwnedEventId>,
    #[serde(default, deserialize_with = "event_references")]
    pub auth_events: Vec<OwnedEventId>,
    pub depth: UInt,
    /// Top-level `redacts` (room versions before 11 put it here; 11+ in `content` too).
    #[serde(default)]
    pub redacts: Option<OwnedEventId>,
}

/// A PDU as stored: the signed JSON (without `event_id`, as federation sends it), plus what the
/// server knows about it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredPdu {
    pub event_id: OwnedEventId,
    pub json: CanonicalJsonObject,
    /// Position in the room's timeline (the global stream position it was appended at).
    pub position: u64,
    /// State snapshot before this event.
    pub state_before: u64,
    /// The sending device's transaction id, shown to that device only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<Transaction>,
    /// The content this state event replaced, if any (`unsigned.prev_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_state: Option<OwnedEventId>,
    /// The redaction event that removed this event's content, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_by: Option<OwnedEventId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Transaction {
    pub device_id: String,
    pub txn_id: String,
}

impl StoredPdu {
    /// The readable projection of the PDU.
    pub fn pdu(&self) -> Result<Pdu, serde_json::Error> {
        let mut object = self.json.clone();
        object.insert(
            "event_id".into(),
            ruma::CanonicalJsonValue::String(self.event_id.to_string()),
        );
        serde_json::from_value(serde_json::to_value(object)?)
    }

    /// The event as clients see it (the spec's ClientEvent), for `viewer`.
    pub fn client_event(
        &self,
        room_id: &RoomId,
        viewer: Option<&UserId>,
        prev_content: Option<Value>,
    ) -> Value {
        let get = |key: &str| {
            self.json
                .get(key)
                .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
        };
        let mut event = Map::new();
        event.insert("event_id".into(), json!(self.event_id));
        event.insert("room_id".into(), json!(room_id));
        for key in [
            "type",
            "sender",
            "origin_server_ts",
            "content",
            "state_key",
            "redacts",
        ] {
            if let Some(value) = get(key) {
                event.insert(key.into(), value);
            }
        }
        let now = MilliSecondsSinceUnixEpoch::now().get();
        let mut unsigned = Map::new();
        if let Some(ts) = get("origin_server_ts").and_then(|v| v.as_u64()) {
            unsigned.insert("age".into(), json!(u64::from(now).saturating_sub(ts)));
        }
        if let (Some(transaction), Some(viewer)) = (&self.transaction, viewer)
            && get("sender")
                .and_then(|s| s.as_str().map(|s| s == viewer.as_str()))
                .unwrap_or(false)
        {
            unsigned.insert("transaction_id".into(), json!(transaction.txn_id));
        }
        if let Some(prev_content) = prev_content {
            unsigned.insert("prev_content".into(), prev_content);
        }
        if let Some(replaces) = &self.replaces_state {
            unsigned.insert("replaces_state".into(), json!(replaces));
        }
        if let Some(redacted_by) = &self.redacted_by {
            unsigned.insert("redacted_because".into(), json!({"event_id": redacted_by}));
        }
        event.insert("unsigned".into(), Value::Object(unsigned));
        Value::Object(event)
    }

    /// Whether an event passes a `RoomEventFilter`'s type and sender lists (`*` wildcards allowed).
    pub fn matches(&self, filter: &RoomEventFilter) -> bool {
        let field = |key: &str| {
            self.json
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        };
        crate::service::filters::Lists::from(filter).pass(field("type"), field("sender"))
    }

    /// Whether the event's type is `kind`.
    pub fn kind_is(&self, kind: &str) -> bool {
        self.json.get("type").and_then(|v| v.as_str()) == Some(kind)
    }

    pub fn content(&self) -> Value {
        self.json
            .get("content")
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_else(|| json!({}))
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &Self::Id {
        &self.event_id
    }

    fn room_id(&self) -> Option<&RoomId> {
        self.room_id.as_deref()
    }

    fn sender(&self) -> &UserId {
        &self.sender
    }

    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }

    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }

    fn content(&self) -> &RawJsonValue {
        &self.content
    }

    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.prev_events.iter())
    }

    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.auth_events.iter())
    }

    fn redacts(&self) -> Option<&Self::Id> {
        self.redacts.as_ref()
    }

    fn rejected(&self) -> bool {
        false
    }
}

/// `prev_events` / `auth_events`: plain event ids (room versions 3+), or `[event_id, hashes]`
/// pairs (versions 1 and 2), read as the ids either way.
fn event_references<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<OwnedEventId>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Reference {
        Id(OwnedEventId),
        WithHashes(OwnedEventId, serde::de::IgnoredAny),
    }
    Ok(Vec::<Reference>::deserialize(deserializer)?
        .into_iter()
        .map(|reference| match reference {
            Reference::Id(id) | Reference::WithHashes(id, _) => id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu(prev_events: Value) -> Result<Pdu, serde_json::Error> {
        serde_json::from_value(json!({
            "event_id": "$abc:example.org",
            "room_id": "!room:example.org",
            "sender": "@alice:example.org",
            "origin_server_ts": 1,
            "type": "m.room.message",
            "content": {"body": "hi"},
            "depth": 2,
            "prev_events": prev_events,
            "auth_events": [],
        }))
    }

    #[test]
    fn reads_event_references_of_every_room_version() {
        // v3+: ids; v1/v2: [id, {hashes}] pairs.
        let modern = pdu(json!(["$prev"])).expect("v3+ format");
        assert_eq!(
            modern.prev_events,
            vec![OwnedEventId::try_from("$prev").expect("id")]
        );
        let legacy = pdu(json!([["$prev:example.org", {"sha256": "abc"}]])).expect("v1/v2 format");
        assert_eq!(
            legacy.prev_events,
            vec![OwnedEventId::try_from("$prev:example.org").expect("id")]
        );
        assert!(pdu(json!([42])).is_err());
    }
}
