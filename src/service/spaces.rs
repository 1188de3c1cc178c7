//! Spaces: `/hierarchy` walks a space's `m.space.child` events breadth-first and lists the
//! rooms the requester may learn about (joined, or public, knockable or world-readable).

use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::directory::PublicRoom;

/// Rooms visited at most per request, whatever the space's size.
const MAX_ROOMS: usize = 500;

/// One room of a hierarchy: its summary and its stripped `m.space.child` events.
pub struct HierarchyRoom {
    pub summary: PublicRoom,
    pub children_state: Vec<Value>,
}

impl Services {
    /// Whether `user` may see a room's summary in a hierarchy.
    fn may_preview(&self, room_id: &RoomId, user: &UserId, summary: &PublicRoom) -> Result<bool> {
        let joined = self.rooms.current_membership(room_id, user)? == Some(MembershipState::Join);
        Ok(joined
            || summary.world_readable
            || matches!(
                summary.join_rule.as_str(),
                "public" | "knock" | "knock_restricted"
            ))
    }

    /// A room's children: `(child room id, stripped m.space.child event)` with a non-empty `via`.
    fn space_children(
        &self,
        room_id: &RoomId,
        suggested_only: bool,
    ) -> Result<Vec<(OwnedRoomId, Value)>> {
        let Some(room) = self.rooms.room(room_id)? else {
            return Ok(Vec::new());
        };
        let mut children = Vec::new();
        for pdu in self.rooms.full_state_at(room.snapshot)? {
            if !pdu.kind_is("m.space.child") {
                continue;
            }
            let content = pdu.content();
            let via_ok = content["via"].as_array().is_some_and(|via| !via.is_empty());
            if !via_ok || (suggested_only && content["suggested"] != json!(true)) {
                continue;
            }
            let Some(child) = pdu
                .json
                .get("state_key")
                .and_then(|k| k.as_str())
                .and_then(|k| OwnedRoomId::try_from(k).ok())
            else {
                continue;
            };
            let stripped = json!({
                "type": "m.space.child",
                "state_key": child,
                "content": content,
                "sender": pdu.json.get("sender").and_then(|s| serde_json::to_value(s).ok()),
                "origin_server_ts": pdu.json.get("origin_server_ts").and_then(|t| serde_json::to_value(t).ok()),
            });
            children.push((child, stripped));
        }
        Ok(children)
    }

    /// `/hierarchy`: rooms of the space rooted at `root`, breadth-first, skipping `skip` rooms
    /// (the pagination token), at most `limit`. Returns them and whether more remain.
    pub fn hierarchy(
        &self,
        user: &UserId,
        root: &RoomId,
        suggested_only: bool,
        max_depth: Option<usize>,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<HierarchyRoom>, bool)> {
        let summary = self
            .room_summary(root.to_owned())?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        if !self.may_preview(root, user, &summary)? {
            return Err(Error::forbidden("You cannot see this space"));
        }
        let mut queue = VecDeque::from([(root.to_owned(), 0usize)]);
        let mut seen: HashSet<OwnedRoomId> = HashSet::from([root.to_owned()]);
        let mut listed = 0;
        let mut rooms = Vec::new();
        while let Some((room_id, depth)) = queue.pop_front() {
            if seen.len() > MAX_ROOMS {
                break;
            }
            let Some(summary) = self.room_summary(room_id.clone())? else {
                continue;
            };
            if !self.may_preview(&room_id, user, &summary)? {
                continue;
            }
            let children = self.space_children(&room_id, suggested_only)?;
            if max_depth.is_none_or(|max| depth < max) {
                for (child, _) in &children {
                    if seen.insert(child.clone()) {
                        queue.push_back((child.clone(), depth + 1));
                    }
                }
            }
            listed += 1;
            if listed <= skip {
                continue;
            }
            if rooms.len() == limit {
                return Ok((rooms, true));
            }
            rooms.push(HierarchyRoom {
                summary,
                children_state: children.into_iter().map(|(_, event)| event).collect(),
            });
        }
        Ok((rooms, false))
    }
}
