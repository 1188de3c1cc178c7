//! Unread counts: every new event is evaluated against each joined member's push rules (ruma's
//! evaluation with the spec's default rules), and the events that notify are stored per user,
//! so `/sync` counts them past the user's read receipt instead of re-evaluating history.

use ruma::events::AnySyncTimelineEvent;
use ruma::events::room::member::MembershipState;
use ruma::push::{PushConditionPowerLevelsCtx, PushConditionRoomCtx};
use ruma::serde::Raw;
use ruma::{RoomId, UInt, UserId};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::pdu::StoredPdu;
use crate::service::rooms::{MembershipRecord, NewEvent, RoomRecord};
use crate::storage::{Cf, Key, KeyReader};

fn key(user: &UserId, room: &RoomId) -> Key {
    Key::new().str(user.as_str()).str(room.as_str())
}

impl Services {
    /// Appends an event (see `Rooms::append`), records who it notifies, and publishes it to the
    /// syncs of the users it concerns.
    pub async fn append_event(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        new: NewEvent,
        transaction: Option<crate::service::rooms::pdu::Transaction>,
    ) -> Result<ruma::OwnedEventId> {
        let appended = self.rooms.append(room_id, sender, new, transaction).await?;
        let Some((room, pdu, mut ticket)) = appended.new else {
            return Ok(appended.event_id);
        };
        let members = self.rooms.members_of(room_id)?;
        // Every joined member sees the event; a member event's target does too (an invite, a
        // kick or a ban reaches someone who is not, or no longer, joined).
        let target = pdu
            .kind_is("m.room.member")
            .then(|| pdu.json.get("state_key").and_then(|k| k.as_str()))
            .flatten()
            .and_then(|k| UserId::parse(k).ok());
        ticket.concerns(
            members
                .iter()
                .filter(|(_, record)| record.membership == MembershipState::Join)
                .map(|(user, _)| &**user)
                .chain(target.as_deref()),
        );
        // Counts are written before the position is published, so a sync that sees the event
        // counts it too. Counting is best-effort: the event itself is stored and acknowledged.
        let notified = match self.record_push_actions(&room, &pdu, members).await {
            Ok(notified) => notified,
            Err(err) => {
                tracing::warn!(%err, room = %room_id, event = %appended.event_id, "could not evaluate push rules");
                Vec::new()
            }
        };
        drop(ticket);
        self.push(room_id, &pdu, notified);
        Ok(appended.event_id)
    }

    async fn record_push_actions(
        &self,
        room: &RoomRecord,
        pdu: &StoredPdu,
        all_members: Vec<(ruma::OwnedUserId, MembershipRecord)>,
    ) -> Result<Vec<(ruma::OwnedUserId, bool)>> {
        let room_id = &room.room_id;
        let sender = pdu
            .json
            .get("sender")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_owned();
        // Under the default rules member events notify nobody but an invitee
        // (`.m.rule.invite_for_me`; `.m.rule.member_event` silences the rest), so a join costs
        // one lookup, not one evaluation per member. Users who re-enable member-event
        // notifications in their own rules are not notified of joins and leaves (a known gap:
        // evaluating every member would make joins cost as much as the room is large).
        let invitee = if pdu.kind_is("m.room.member") {
            if pdu.content().get("membership").and_then(Value::as_str) != Some("invite") {
                return Ok(Vec::new());
            }
            pdu.json
                .get("state_key")
                .and_then(|k| k.as_str())
                .map(str::to_owned)
        } else {
            None
        };
        let joined = all_members
            .iter()
            .filter(|(_, r)| r.membership == MembershipState::Join)
            .count();
        let members: Vec<_> = all_members
            .into_iter()
            .filter(|(user, record)| match &invitee {
                Some(invitee) => user.as_str() == invitee,
                None => record.membership == MembershipState::Join && user.as_str() != sender,
            })
            .collect();
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let event: Raw<AnySyncTimelineEvent> = Raw::from_json(
            serde_json::value::to_raw_value(&pdu.client_event(room_id, None, None))
                .map_err(Error::internal)?,
        );
        let power: PushConditionPowerLevelsCtx = self.rooms.power_levels(room)?.into();
        let member_count = UInt::new(joined as u64).unwrap_or_default();
        let thread = thread_of(pdu);
        let mut batch = self.db.batch();
        let mut notified = Vec::new();
        for (user, record) in members {
            let display_name = record
                .displayname
                .unwrap_or_else(|| user.localpart().to_owned());
            let mut context = PushConditionRoomCtx::new(
                room_id.to_owned(),
                member_count,
                user.clone(),
                display_name,
            );
            context.power_levels = Some(power.clone());
            let rules = self.push_rules(&user)?;
            let actions = rules.get_actions(&event, &context).await;
            if actions.iter().any(|action| action.should_notify()) {
                let highlight = actions.iter().any(|action| action.is_highlight());
                // `[highlight]` then the thread root, if the event is in a thread.
                let mut value = vec![u8::from(highlight)];
                value.extend_from_slice(thread.as_deref().unwrap_or_default().as_bytes());
                batch.put(
                    Cf::PushActions,
                    key(&user, room_id).u64(pdu.position),
                    value,
                );
                notified.push((user, highlight));
            }
        }
        batch.commit()?;
        Ok(notified)
    }

    /// Notifying events past the user's read receipts. An event counts until a receipt covers
    /// it: an unthreaded receipt covers everything before it, a threaded one its thread (`main`
    /// being the timeline outside threads). With `per_thread`, events in threads are counted per
    /// thread root instead of in the room's total.
    pub fn unread_counts(
        &self,
        user: &UserId,
        room_id: &RoomId,
        per_thread: bool,
    ) -> Result<Unread> {
        let (unthreaded, read) = self.read_positions(user, room_id)?;
        let prefix = key(user, room_id);
        let table = self.db.table(Cf::PushActions);
        let mut unread = Unread::default();
        for (key, value) in table.scan_from(
            prefix.as_ref(),
            prefix.clone().u64(unthreaded + 1).as_ref(),
            true,
            usize::MAX,
        )? {
            let position = KeyReader::new(&key[prefix.as_ref().len()..])
                .u64()
                .unwrap_or(0);
            let Some((&highlight, thread)) = value.split_first() else {
                continue;
            };
            let thread = std::str::from_utf8(thread).unwrap_or_default();
            let read_up_to = read
                .get(if thread.is_empty() { "main" } else { thread })
                .copied()
                .unwrap_or(0)
                .max(unthreaded);
            if position <= read_up_to {
                continue;
            }
            let counts = if per_thread && !thread.is_empty() {
                unread.threads.entry(thread.to_owned()).or_default()
            } else {
                &mut unread.room
            };
            counts.0 += 1;
            counts.1 += u64::from(highlight == 1);
        }
        Ok(unread)
    }
}

impl Services {
    /// Hands an event to the pushers of the users it notified (in the background).
    fn push(&self, room_id: &RoomId, pdu: &StoredPdu, notified: Vec<(ruma::OwnedUserId, bool)>) {
        for (user, highlight) in notified {
            if !self.pushers.has_any(&user) {
                continue;
            }
            let unread = self.total_unread(&user).unwrap_or(0);
            self.pushers
                .dispatch(crate::service::pushers::Notification {
                    event: pdu.client_event(room_id, None, None),
                    user,
                    highlight,
                    unread,
                });
        }
    }

    /// Unread notifications across all rooms (the badge count on a phone).
    pub fn total_unread(&self, user: &UserId) -> Result<u64> {
        let prefix = Key::new().str(user.as_str());
        let mut rooms = std::collections::BTreeSet::new();
        for (key, _) in self.db.table(Cf::PushActions).scan_prefix(&prefix)? {
            if let Some(room) = KeyReader::new(&key[prefix.as_ref().len()..]).str() {
                rooms.insert(room.to_owned());
            }
        }
        let mut total = 0;
        for room in rooms {
            let room_id = ruma::OwnedRoomId::try_from(room.as_str()).map_err(Error::internal)?;
            total += self.unread_counts(user, &room_id, false)?.room.0;
        }
        Ok(total)
    }

    /// Where the user's receipts in a room are: the unthreaded one, and per thread (`main`
    /// for the timeline outside threads).
    fn read_positions(
        &self,
        user: &UserId,
        room_id: &RoomId,
    ) -> Result<(u64, HashMap<String, u64>)> {
        let mut unthreaded = 0;
        let mut read: HashMap<String, u64> = HashMap::new();
        for (thread, event_id) in self.receipts.own(room_id, user)? {
            let Some(position) = self.rooms.pdu(&event_id)?.map(|pdu| pdu.position) else {
                continue;
            };
            if thread.is_empty() {
                unthreaded = unthreaded.max(position);
            } else {
                let entry = read.entry(thread).or_default();
                *entry = (*entry).max(position);
            }
        }
        Ok((unthreaded, read))
    }

    /// `/notifications`: the events that notified `user`, newest first, before stream position
    /// `from`, and the token for the next page.
    pub fn notifications(
        &self,
        user: &UserId,
        from: Option<u64>,
        limit: usize,
        only_highlight: bool,
    ) -> Result<(Vec<Notified>, Option<u64>)> {
        let prefix = Key::new().str(user.as_str());
        let mut entries = Vec::new();
        for (key, value) in self.db.table(Cf::PushActions).scan_prefix(&prefix)? {
            let mut reader = KeyReader::new(&key[prefix.as_ref().len()..]);
            let (Some(room), Some(position)) = (reader.str(), reader.u64()) else {
                continue;
            };
            let highlight = value.first() == Some(&1);
            if from.is_some_and(|from| position >= from) || (only_highlight && !highlight) {
                continue;
            }
            let thread = std::str::from_utf8(value.get(1..).unwrap_or_default())
                .unwrap_or_default()
                .to_owned();
            entries.push((position, room.to_owned(), highlight, thread));
        }
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        let next = (entries.len() > limit).then(|| entries[limit - 1].0);
        entries.truncate(limit);
        let mut read_cache: HashMap<String, (u64, HashMap<String, u64>)> = HashMap::new();
        let mut found = Vec::new();
        for (position, room, highlight, thread) in entries {
            let room_id = ruma::OwnedRoomId::try_from(room.as_str()).map_err(Error::internal)?;
            let Some(record) = self.rooms.room(&room_id)? else {
                continue;
            };
            let Some(pdu) = self
                .rooms
                .timeline(&record, Some(position), false, 1)?
                .into_iter()
                .find(|pdu| pdu.position == position)
            else {
                continue;
            };
            if !read_cache.contains_key(&room) {
                read_cache.insert(room.clone(), self.read_positions(user, &room_id)?);
            }
            let (unthreaded, threads) = &read_cache[&room];
            let thread_key = if thread.is_empty() {
                "main"
            } else {
                thread.as_str()
            };
            let read_up_to = threads
                .get(thread_key)
                .copied()
                .unwrap_or(0)
                .max(*unthreaded);
            found.push(Notified {
                room_id,
                pdu,
                highlight,
                read: position <= read_up_to,
            });
        }
        Ok((found, next))
    }
}

/// An event that notified a user.
pub struct Notified {
    pub room_id: ruma::OwnedRoomId,
    pub pdu: StoredPdu,
    pub highlight: bool,
    /// At or before the user's read receipt.
    pub read: bool,
}

/// Unread `(notification_count, highlight_count)` of a room, and per thread when asked for.
#[derive(Debug, Default)]
pub struct Unread {
    pub room: (u64, u64),
    pub threads: BTreeMap<String, (u64, u64)>,
}

/// The thread root an event belongs to (`m.relates_to` with `rel_type: m.thread`).
fn thread_of(pdu: &StoredPdu) -> Option<String> {
    let relation = pdu.content().get("m.relates_to")?.clone();
    (relation.get("rel_type")?.as_str()? == "m.thread")
        .then(|| relation.get("event_id")?.as_str().map(str::to_owned))
        .flatten()
}
