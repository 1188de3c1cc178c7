//! Abuse reports: users report an event, a room or another user; the reports are kept for the
//! server's admins (who list and resolve them through the admin API).

use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::counters::Counter;
use crate::service::users::now_ms;
use crate::storage::{Cf, Db, Key};

/// The longest reason kept, in bytes.
const MAX_REASON: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub reporter: OwnedUserId,
    pub room_id: Option<OwnedRoomId>,
    pub event_id: Option<OwnedEventId>,
    pub user_id: Option<OwnedUserId>,
    pub reason: Option<String>,
    pub received_ms: u64,
}

pub struct Reports {
    db: Db,
    ids: Counter,
}

impl Reports {
    pub fn new(db: Db) -> Result<Reports> {
        Ok(Reports {
            ids: Counter::open(db.clone(), b"next_report_id")?,
            db,
        })
    }

    fn store(&self, report: Report) -> Result<u64> {
        if report.reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
            return Err(Error::bad_json(format!(
                "A reason is at most {MAX_REASON} bytes"
            )));
        }
        let id = self.ids.next()?;
        self.db
            .table(Cf::Reports)
            .put_json(Key::new().u64(id), &report)?;
        tracing::info!(report = id, reporter = %report.reporter, "abuse report received");
        Ok(id)
    }

    pub fn get(&self, id: u64) -> Result<Option<Report>> {
        Ok(self.db.table(Cf::Reports).get_json(Key::new().u64(id))?)
    }

    /// Deletes a report once an admin has dealt with it; false if there was none.
    pub fn delete(&self, id: u64) -> Result<bool> {
        if self.get(id)?.is_none() {
            return Ok(false);
        }
        self.db.table(Cf::Reports).delete(Key::new().u64(id))?;
        Ok(true)
    }

    /// Every report, oldest first, with its id.
    pub fn all(&self) -> Result<Vec<(u64, Report)>> {
        Ok(self
            .db
            .table(Cf::Reports)
            .scan_prefix_json::<Report>([])?
            .into_iter()
            .filter_map(|(key, report)| {
                crate::storage::KeyReader::new(&key)
                    .u64()
                    .map(|id| (id, report))
            })
            .collect())
    }
}

impl Services {
    /// A report of an event the reporter can see (others' events they cannot see are 404, so a
    /// report cannot probe a room).
    pub fn report_event(
        &self,
        reporter: &UserId,
        room_id: &RoomId,
        event_id: &EventId,
        reason: Option<String>,
    ) -> Result<u64> {
        let room = self
            .rooms
            .room(room_id)?
            .ok_or_else(|| Error::not_found("Unknown room"))?;
        self.rooms
            .visible_event(room_id, &room, reporter, event_id)
            .map_err(|_| Error::not_found("Unknown event"))?;
        self.reports.store(Report {
            reporter: reporter.to_owned(),
            room_id: Some(room_id.to_owned()),
            event_id: Some(event_id.to_owned()),
            user_id: None,
            reason,
            received_ms: now_ms(),
        })
    }

    pub fn report_room(&self, reporter: &UserId, room_id: &RoomId, reason: String) -> Result<u64> {
        if self.rooms.room(room_id)?.is_none() {
            return Err(Error::not_found("Unknown room"));
        }
        self.reports.store(Report {
            reporter: reporter.to_owned(),
            room_id: Some(room_id.to_owned()),
            event_id: None,
            user_id: None,
            reason: Some(reason),
            received_ms: now_ms(),
        })
    }

    pub fn report_user(&self, reporter: &UserId, user: &UserId, reason: String) -> Result<u64> {
        if !self.users.exists(user)? {
            return Err(Error::not_found("Unknown user"));
        }
        self.reports.store(Report {
            reporter: reporter.to_owned(),
            room_id: None,
            event_id: None,
            user_id: Some(user.to_owned()),
            reason: Some(reason),
            received_ms: now_ms(),
        })
    }
}
