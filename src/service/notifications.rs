//! Unread counts: every new event is evaluated against each joined member's push rules (ruma's
//! evaluation with the spec's default rules), and the events that notify are stored per user,
//! so `/sync` counts them past the user's read receipt instead of re-evaluating history.

use ruma::events::AnySyncTimelineEvent;
use ruma::events::room::member::MembershipState;
use ruma::push::{PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset};
use ruma::serde::Raw;
use ruma::{EventId, RoomId, UInt, UserId};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::receipts::{READ, READ_PRIVATE};
use crate::service::rooms::NewEvent;
use crate::service::rooms::pdu::StoredPdu;
use crate::storage::{Cf, Key, KeyReader};

fn key(user: &UserId, room: &RoomId) -> Key {
    Key::new().str(user.as_str()).str(room.as_str())
}

impl Services {
    /// Appends an event (see `Rooms::append`) and records who it notifies.
    pub async fn append_event(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        new: NewEvent,
        transaction: Option<crate::service::rooms::pdu::Transaction>,
    ) -> Result<ruma::OwnedEventId> {
        let event_id = self.rooms.append(room_id, sender, new, transaction).await?;
        if let Err(err) = self.record_push_actions(room_id, &event_id).await {
            // Counting is best-effort: the event itself is stored and acknowledged.
            tracing::warn!(%err, room = %room_id, event = %event_id, "could not evaluate push rules");
        }
        Ok(event_id)
    }

    async fn record_push_actions(&self, room_id: &RoomId, event_id: &EventId) -> Result<()> {
        let room = self.rooms.existing_room(room_id)?;
        let Some(pdu) = self.rooms.pdu(event_id)? else {
            return Ok(());
        };
        let sender = pdu
            .json
            .get("sender")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_owned();
        // With the default rules (the only ones until rules can be edited), member events notify
        // nobody but an invitee (`.m.rule.invite_for_me`; `.m.rule.member_event` silences the
        // rest), so a join costs one lookup, not one evaluation per member.
        let invitee = if pdu.kind_is("m.room.member") {
            if pdu.content().get("membership").and_then(Value::as_str) != Some("invite") {
                return Ok(());
            }
            pdu.json
                .get("state_key")
                .and_then(|k| k.as_str())
                .map(str::to_owned)
        } else {
            None
        };
        let all_members = self.rooms.members_of(room_id)?;
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
            return Ok(());
        }
        let event: Raw<AnySyncTimelineEvent> = Raw::from_json(
            serde_json::value::to_raw_value(&pdu.client_event(room_id, None, None))
                .map_err(Error::internal)?,
        );
        let power: PushConditionPowerLevelsCtx = self.rooms.power_levels(&room)?.into();
        let member_count = UInt::new(joined as u64).unwrap_or_default();
        let mut batch = self.db.batch();
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
            let rules = Ruleset::server_default(&user);
            let actions = rules.get_actions(&event, &context).await;
            if actions.iter().any(|action| action.should_notify()) {
                let highlight = actions.iter().any(|action| action.is_highlight());
                batch.put(
                    Cf::PushActions,
                    key(&user, room_id).u64(pdu.position),
                    [u8::from(highlight)],
                );
            }
        }
        batch.commit()?;
        Ok(())
    }

    /// `(notification_count, highlight_count)`: notifying events after the user's read receipt.
    pub fn unread_counts(&self, user: &UserId, room_id: &RoomId) -> Result<(u64, u64)> {
        let read_up_to = [READ, READ_PRIVATE]
            .into_iter()
            .filter_map(|kind| self.receipts.own(room_id, user, kind).ok().flatten())
            .filter_map(|event_id| {
                self.rooms
                    .pdu(&event_id)
                    .ok()
                    .flatten()
                    .map(|pdu: StoredPdu| pdu.position)
            })
            .max()
            .unwrap_or(0);
        let prefix = key(user, room_id);
        let table = self.db.table(Cf::PushActions);
        let (mut notifications, mut highlights) = (0, 0);
        for (key, value) in table.scan_from(
            prefix.as_ref(),
            prefix.clone().u64(read_up_to + 1).as_ref(),
            true,
            usize::MAX,
        )? {
            let position = KeyReader::new(&key[prefix.as_ref().len()..])
                .u64()
                .unwrap_or(0);
            if position > read_up_to {
                notifications += 1;
                highlights += u64::from(value.first() == Some(&1));
            }
        }
        Ok((notifications, highlights))
    }
}
