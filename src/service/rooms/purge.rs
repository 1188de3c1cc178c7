//! Purging a room: every event, index entry and membership record the server holds for it, so
//! a room an admin deleted leaves nothing behind for anyone to read.

use ruma::RoomId;
use std::collections::HashSet;

use crate::error::Result;
use crate::service::rooms::pdu::StoredPdu;
use crate::service::rooms::{MembershipRecord, Rooms, txn_key};
use crate::storage::{Cf, Key};

/// Events deleted per write batch, so purging a long history does not build one huge batch.
const EVENTS_PER_BATCH: usize = 1000;

impl Rooms {
    /// Deletes a room's data. The room record and memberships go first, in one batch: from
    /// then on the room is unknown, and a purge cut short by a crash leaves only unreachable
    /// events. Holds the room's lock, so no event is appended in between (one appended after
    /// finds no room). Returns how many events were deleted.
    pub async fn purge(&self, room_id: &RoomId) -> Result<u64> {
        let lock = self.lock(room_id)?;
        let _guard = lock.lock().await;
        let Some(room) = self.room(room_id)? else {
            return Ok(0);
        };
        let room_prefix = Key::new().str(room_id.as_str());
        let mut batch = self.db.batch();
        batch.delete(Cf::Rooms, room_id.as_str());
        for (key, _) in self
            .db
            .table(Cf::RoomMembers)
            .scan_prefix_json::<MembershipRecord>(&room_prefix)?
        {
            batch.delete(Cf::RoomMembers, &key);
            let Ok(user) = std::str::from_utf8(&key[room_prefix.as_ref().len()..]) else {
                continue;
            };
            batch.delete(
                Cf::UserRooms,
                Key::new().str(user).bytes(room_id.as_bytes()),
            );
            let user_room = Key::new().str(user).str(room_id.as_str());
            for (key, _) in self.db.table(Cf::PushActions).scan_prefix(&user_room)? {
                batch.delete(Cf::PushActions, &key);
            }
            for (key, _) in self.db.table(Cf::AccountData).scan_prefix(&user_room)? {
                batch.delete(Cf::AccountData, &key);
            }
        }
        for (key, _) in self.db.table(Cf::Receipts).scan_prefix(&room_prefix)? {
            batch.delete(Cf::Receipts, &key);
        }
        for (key, _) in self
            .db
            .table(Cf::Threads)
            .scan_prefix(room.short.to_be_bytes())?
        {
            batch.delete(Cf::Threads, &key);
        }
        batch.commit()?;

        let mut snapshots = HashSet::from([room.snapshot]);
        let mut deleted = 0;
        loop {
            let events = self.timeline(&room, None, true, EVENTS_PER_BATCH)?;
            if events.is_empty() {
                break;
            }
            let mut batch = self.db.batch();
            for pdu in &events {
                self.forget_event(&mut batch, room.short, pdu);
                snapshots.insert(pdu.state_before);
            }
            batch.commit()?;
            deleted += events.len() as u64;
        }
        let mut batch = self.db.batch();
        for snapshot in snapshots {
            if snapshot != super::state::Snapshots::EMPTY {
                batch.delete(Cf::StateSnapshots, snapshot.to_be_bytes());
            }
        }
        batch.commit()?;
        tracing::info!(room = %room_id, events = deleted, "room purged");
        Ok(deleted)
    }

    /// Deletes one event and every index entry that names it.
    fn forget_event(
        &self,
        batch: &mut crate::storage::Batch<'_>,
        room_short: u64,
        pdu: &StoredPdu,
    ) {
        batch.delete(Cf::Pdus, Key::new().u64(room_short).u64(pdu.position));
        batch.delete(Cf::EventIndex, pdu.event_id.as_bytes());
        let kind = pdu
            .json
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        let content = pdu.content();
        for entry in crate::service::search::terms_of(&kind, &content) {
            batch.delete(
                Cf::SearchTerms,
                Key::new()
                    .str(&entry.term)
                    .str(entry.field)
                    .u64(room_short)
                    .u64(pdu.position),
            );
        }
        if let Some((rel_type, parent)) = crate::service::relations::relation_of(&content) {
            batch.delete(
                Cf::Relations,
                Key::new().str(&parent).str(&rel_type).u64(pdu.position),
            );
        }
        if let (Some(transaction), Some(sender)) = (
            &pdu.transaction,
            pdu.json
                .get("sender")
                .and_then(|s| s.as_str())
                .and_then(|s| ruma::UserId::parse(s).ok()),
        ) {
            batch.delete(Cf::TxnIds, txn_key(&sender, transaction));
        }
    }
}
