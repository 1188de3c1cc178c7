//! Relations between events (spec: event relationships, threading, replacements, annotations,
//! references): the rules a new relation must follow, the index behind
//! `/relations` and `/threads`, and the aggregations bundled into served events.
//!
//! Every event whose content has `m.relates_to` with a `rel_type` is indexed under its parent
//! when it is stored (see `Rooms::commit`). Aggregations are computed when an event is served,
//! skipping redacted children, so redacting an edit brings back the previous text and a
//! redacted reaction stops counting.

use ruma::{EventId, RoomId, UserId};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::RoomRecord;
use crate::service::rooms::pdu::StoredPdu;
use crate::storage::{Cf, Key, KeyReader};

pub const THREAD: &str = "m.thread";
pub const REPLACE: &str = "m.replace";
pub const ANNOTATION: &str = "m.annotation";
pub const REFERENCE: &str = "m.reference";

/// `(rel_type, parent event id)` of an event's `m.relates_to`, if it has a relation type.
/// (Plain replies, `m.in_reply_to` alone, are not relations in this sense.)
pub fn relation_of(content: &Value) -> Option<(String, String)> {
    let relates_to = content.get("m.relates_to")?;
    let rel_type = relates_to.get("rel_type")?.as_str()?;
    let parent = relates_to.get("event_id")?.as_str()?;
    Some((rel_type.to_owned(), parent.to_owned()))
}

fn sender(pdu: &StoredPdu) -> &str {
    pdu.json
        .get("sender")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
}

fn kind(pdu: &StoredPdu) -> &str {
    pdu.json
        .get("type")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
}

fn invalid(message: &str) -> Error {
    Error::invalid_param(message)
}

/// A page of related events and where the next one starts.
pub struct RelatedPage {
    pub events: Vec<StoredPdu>,
    pub next: Option<u64>,
}

impl Services {
    /// The rules a new relation must follow; checked before an event is sent.
    pub fn check_relation(
        &self,
        room: &RoomRecord,
        sender_id: &UserId,
        event_type: &str,
        content: &Value,
    ) -> Result<()> {
        let Some((rel_type, parent_id)) = relation_of(content) else {
            return Ok(());
        };
        let parent_id = EventId::parse(&parent_id)
            .map_err(|_| invalid("m.relates_to.event_id is not an event id"))?;
        let parent = self
            .rooms
            .pdu_in_room(room, &parent_id)?
            .ok_or_else(|| invalid("The event this relates to is not in this room"))?;
        if relation_of(&parent.content()).is_some_and(|(rel, _)| rel == REPLACE) {
            return Err(invalid("Events cannot relate to an edit"));
        }
        match rel_type.as_str() {
            ANNOTATION => {
                let key = content["m.relates_to"]["key"].as_str().unwrap_or_default();
                if key.is_empty() {
                    return Err(invalid("A reaction needs a non-empty key"));
                }
                let duplicate = self
                    .children(&parent_id, Some(ANNOTATION))?
                    .iter()
                    .any(|child| {
                        child.redacted_by.is_none()
                            && sender(child) == sender_id.as_str()
                            && kind(child) == event_type
                            && child.content()["m.relates_to"]["key"].as_str() == Some(key)
                    });
                if duplicate {
                    return Err(Error::custom(
                        http::StatusCode::BAD_REQUEST,
                        "M_DUPLICATE_ANNOTATION",
                        "You already reacted with this key",
                    ));
                }
            }
            REPLACE => {
                if sender(&parent) != sender_id.as_str() {
                    return Err(Error::forbidden("Only the sender of an event can edit it"));
                }
                if kind(&parent) != event_type || parent.json.contains_key("state_key") {
                    return Err(invalid("An edit must have the type of the event it edits"));
                }
            }
            THREAD if relation_of(&parent.content()).is_some() => {
                return Err(invalid("A thread's root cannot itself be a relation"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Events relating to `parent` (of one `rel_type`, or all), oldest first.
    fn children(&self, parent: &EventId, rel_type: Option<&str>) -> Result<Vec<StoredPdu>> {
        let mut prefix = Key::new().str(parent.as_str());
        if let Some(rel_type) = rel_type {
            prefix = prefix.str(rel_type);
        }
        let mut children = Vec::new();
        for (key, value) in self.db.table(Cf::Relations).scan_prefix(&prefix)? {
            let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
            if rel_type.is_none() {
                reader.str();
            }
            let (Some(position), Ok(short)) = (reader.u64(), <[u8; 8]>::try_from(&value[..]))
            else {
                continue;
            };
            if let Some(pdu) = self.rooms.pdu_at(u64::from_be_bytes(short), position)? {
                children.push(pdu);
            }
        }
        children.sort_by_key(|pdu| pdu.position);
        Ok(children)
    }

    /// `unsigned.m.relations` for an event served to `viewer`: the thread summary, the latest
    /// edit, and references. `None` when nothing relates to it.
    pub fn bundled_relations(
        &self,
        room_id: &RoomId,
        event: &StoredPdu,
        viewer: Option<&UserId>,
    ) -> Result<Option<Value>> {
        let children = self.children(&event.event_id, None)?;
        if children.is_empty() {
            return Ok(None);
        }
        let current = match viewer {
            Some(viewer) => self.rooms.current_membership(room_id, viewer)?,
            None => None,
        };
        let mut visible = Vec::new();
        for child in children {
            let seen = match viewer {
                Some(viewer) => self.rooms.can_see(viewer, &child, current.as_ref())?,
                None => true,
            };
            if seen && child.redacted_by.is_none() {
                visible.push(child);
            }
        }
        let rel = |pdu: &StoredPdu| relation_of(&pdu.content()).map(|(rel, _)| rel);
        let mut bundle = serde_json::Map::new();
        let thread: Vec<&StoredPdu> = visible
            .iter()
            .filter(|c| rel(c).as_deref() == Some(THREAD))
            .collect();
        if let Some(latest) = thread.last() {
            let participated = viewer.is_some_and(|viewer| {
                sender(event) == viewer.as_str()
                    || thread.iter().any(|reply| sender(reply) == viewer.as_str())
            });
            bundle.insert(
                THREAD.into(),
                json!({
                    "latest_event": latest.client_event(room_id, viewer, None),
                    "count": thread.len(),
                    "current_user_participated": participated,
                }),
            );
        }
        // Only the original sender's edits of the same type count.
        if let Some(edit) = visible.iter().rev().find(|c| {
            rel(c).as_deref() == Some(REPLACE)
                && sender(c) == sender(event)
                && kind(c) == kind(event)
        }) {
            bundle.insert(REPLACE.into(), edit.client_event(room_id, viewer, None));
        }
        let references: Vec<Value> = visible
            .iter()
            .filter(|c| rel(c).as_deref() == Some(REFERENCE))
            .map(|c| json!({"event_id": c.event_id}))
            .collect();
        if !references.is_empty() {
            bundle.insert(REFERENCE.into(), json!({ "chunk": references }));
        }
        Ok((!bundle.is_empty()).then_some(Value::Object(bundle)))
    }

    /// `/relations`: events relating to `parent` that `viewer` may see, by relation type and
    /// event type, paginated by stream position in either direction; with `recurse`, events
    /// relating to those too (up to `MAX_DEPTH` levels).
    #[allow(clippy::too_many_arguments)]
    pub fn relations(
        &self,
        room_id: &RoomId,
        viewer: &UserId,
        parent: &EventId,
        rel_type: Option<&str>,
        event_type: Option<&str>,
        from: Option<u64>,
        to: Option<u64>,
        limit: usize,
        forward: bool,
        recurse: bool,
    ) -> Result<RelatedPage> {
        const MAX_DEPTH: usize = 3;
        let (room, current) = self.rooms.open_history(room_id, viewer)?;
        self.rooms.visible_event(room_id, &room, viewer, parent)?;
        let mut related = self.children(parent, rel_type)?;
        if recurse {
            let mut frontier = related.clone();
            for _ in 1..MAX_DEPTH {
                let mut next = Vec::new();
                for child in &frontier {
                    next.extend(self.children(&child.event_id, rel_type)?);
                }
                if next.is_empty() {
                    break;
                }
                related.extend(next.iter().cloned());
                frontier = next;
            }
            related.sort_by_key(|pdu| pdu.position);
        }
        if !forward {
            related.reverse();
        }
        let mut events = Vec::new();
        let mut next = None;
        for pdu in related {
            let position = pdu.position;
            let in_range = match forward {
                true => from.is_none_or(|f| position >= f) && to.is_none_or(|t| position < t),
                false => from.is_none_or(|f| position < f) && to.is_none_or(|t| position >= t),
            };
            if !in_range
                || event_type.is_some_and(|t| kind(&pdu) != t)
                || !self.rooms.can_see(viewer, &pdu, current.as_ref())?
            {
                continue;
            }
            if events.len() == limit {
                // Tokens are boundaries: forwards resumes at this event, backwards below the
                // last one served (this event's position + 1 excludes nothing served).
                next = Some(if forward { position } else { position + 1 });
                break;
            }
            events.push(pdu);
        }
        Ok(RelatedPage { events, next })
    }

    /// `/threads`: thread roots of a room `viewer` may see, most recently active first, before
    /// position `from`; with `participated`, only threads the viewer sent the root of or
    /// replied in.
    pub fn threads(
        &self,
        room_id: &RoomId,
        viewer: &UserId,
        participated: bool,
        from: Option<u64>,
        limit: usize,
    ) -> Result<RelatedPage> {
        let (room, current) = self.rooms.open_history(room_id, viewer)?;
        let prefix = Key::new().u64(room.short);
        let mut roots = Vec::new();
        for (key, value) in self.db.table(Cf::Threads).scan_prefix(&prefix)? {
            let root = String::from_utf8_lossy(&key[prefix.as_ref().len()..]).into_owned();
            let latest = <[u8; 8]>::try_from(&value[..])
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            roots.push((latest, root));
        }
        roots.sort_by_key(|(latest, _)| std::cmp::Reverse(*latest));
        let mut events = Vec::new();
        let mut next = None;
        for (latest, root) in roots {
            if from.is_some_and(|from| latest >= from) {
                continue;
            }
            let Ok(root_id) = EventId::parse(&root) else {
                continue;
            };
            let Some(pdu) = self.rooms.pdu_in_room(&room, &root_id)? else {
                continue;
            };
            if !self.rooms.can_see(viewer, &pdu, current.as_ref())? {
                continue;
            }
            if participated
                && sender(&pdu) != viewer.as_str()
                && !self
                    .children(&root_id, Some(THREAD))?
                    .iter()
                    .any(|reply| sender(reply) == viewer.as_str())
            {
                continue;
            }
            if events.len() == limit {
                next = Some(latest + 1);
                break;
            }
            events.push(pdu);
        }
        Ok(RelatedPage { events, next })
    }
}
