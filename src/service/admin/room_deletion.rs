//! Deleting a room (Synapse's `DELETE /_synapse/admin/v2/rooms/{roomId}`): everyone leaves,
//! the room optionally gets blocked and a replacement room with an explanation, its aliases go,
//! and its data is purged. It runs in the background; its status is kept in memory for admins
//! to poll, as Synapse does.

use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde::Serialize;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::rooms::NewEvent;
use crate::service::rooms::create::{CreateRoom, Preset};

/// Finished jobs kept for status queries at most.
const KEPT_JOBS: usize = 1000;

/// What the admin asked for.
#[derive(Debug, Clone, Default)]
pub struct DeleteRequest {
    pub block: bool,
    pub purge: bool,
    /// Moves the members into a new room made by this (local) user, with `room_name` and
    /// `message` explaining why.
    pub new_room_user_id: Option<OwnedUserId>,
    pub room_name: Option<String>,
    pub message: Option<String>,
}

/// What the deletion did, in Synapse's `shutdown_room` shape.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShutdownResult {
    pub kicked_users: Vec<OwnedUserId>,
    pub failed_to_kick_users: Vec<OwnedUserId>,
    pub local_aliases: Vec<OwnedRoomAliasId>,
    pub new_room_id: Option<OwnedRoomId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeleteStatus {
    pub delete_id: String,
    #[serde(skip)]
    pub room_id: OwnedRoomId,
    /// `shutting_down`, `purging`, `complete` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub shutdown_room: ShutdownResult,
}

/// The deletion jobs of this process's life (the most recent [`KEPT_JOBS`]).
#[derive(Default)]
pub struct RoomDeletions {
    jobs: Mutex<Vec<DeleteStatus>>,
}

impl RoomDeletions {
    fn update(&self, delete_id: &str, change: impl FnOnce(&mut DeleteStatus)) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(job) = jobs.iter_mut().find(|j| j.delete_id == delete_id)
        {
            change(job);
        }
    }

    pub fn by_id(&self, delete_id: &str) -> Option<DeleteStatus> {
        self.jobs
            .lock()
            .ok()?
            .iter()
            .find(|j| j.delete_id == delete_id)
            .cloned()
    }

    pub fn of_room(&self, room_id: &RoomId) -> Vec<DeleteStatus> {
        self.jobs
            .lock()
            .map(|jobs| {
                jobs.iter()
                    .filter(|j| j.room_id == room_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

const DEFAULT_ROOM_NAME: &str = "Content Violation Notification";
const DEFAULT_MESSAGE: &str = "Sharing illegal content on this server is not permitted and rooms in violation will be blocked.";

impl Services {
    /// Checks the request and starts the deletion in the background; returns its `delete_id`.
    /// Deleting a room this server deleted (or blocked) before succeeds again, with nothing
    /// left to do; a room it never knew is 404.
    pub fn start_room_deletion(
        self: &Arc<Self>,
        by: &UserId,
        room_id: &RoomId,
        request: DeleteRequest,
    ) -> Result<String> {
        self.check_room_deletion(room_id, &request)?;
        let delete_id = crate::service::random_string(16);
        if let Ok(mut jobs) = self.room_deletions.jobs.lock() {
            if jobs.len() >= KEPT_JOBS {
                jobs.remove(0);
            }
            jobs.push(DeleteStatus {
                delete_id: delete_id.clone(),
                room_id: room_id.to_owned(),
                status: "shutting_down",
                error: None,
                shutdown_room: ShutdownResult::default(),
            });
        }
        let (services, by, room_id, id) = (
            Arc::clone(self),
            by.to_owned(),
            room_id.to_owned(),
            delete_id.clone(),
        );
        tokio::spawn(async move {
            let deletions = &services.room_deletions;
            let result = services
                .delete_room(Some(&by), &room_id, request, |shutdown| {
                    deletions.update(&id, |job| {
                        job.status = "purging";
                        job.shutdown_room = shutdown.clone();
                    })
                })
                .await;
            match result {
                Ok(shutdown) => deletions.update(&id, |job| {
                    job.status = "complete";
                    job.shutdown_room = shutdown;
                }),
                Err(err) => {
                    tracing::warn!(room = %room_id, %err, "room deletion failed");
                    deletions.update(&id, |job| {
                        job.status = "failed";
                        job.error = Some(err.to_string());
                    })
                }
            }
        });
        Ok(delete_id)
    }

    /// Whether a deletion can start: the room must be known here (or have been deleted or
    /// blocked before: deleting twice succeeds), and a replacement room's owner must be local.
    pub fn check_room_deletion(&self, room_id: &RoomId, request: &DeleteRequest) -> Result<()> {
        let known = self.rooms.room(room_id)?.is_some();
        let moderation = self.room_moderation(room_id)?;
        let handled_before = moderation.deleted_ms.is_some() || moderation.blocked;
        if !known && !handled_before && !request.block {
            return Err(Error::not_found(format!("Unknown room {room_id}")));
        }
        if let Some(user) = &request.new_room_user_id
            && (!self.users.is_local(user) || !self.users.exists(user)?)
        {
            return Err(Error::invalid_param(format!(
                "new_room_user_id {user} is not a local user"
            )));
        }
        Ok(())
    }

    /// Deletes a room now (the CLI waits for this; the admin API runs it in the background).
    /// `purging` is called once everyone has left, before the data is purged.
    /// `by` is the admin, or `None` from the command line.
    pub async fn delete_room(
        &self,
        by: Option<&UserId>,
        room_id: &RoomId,
        request: DeleteRequest,
        purging: impl FnOnce(&ShutdownResult),
    ) -> Result<ShutdownResult> {
        if request.block {
            self.set_room_blocked(room_id, true, by)?;
        }
        let mut result = ShutdownResult::default();
        if let Some(owner) = &request.new_room_user_id {
            result.new_room_id = Some(self.create_replacement_room(owner, &request).await?);
        }
        if self.rooms.room(room_id)?.is_some() {
            for (user, record) in self.rooms.members_of(room_id)? {
                if !matches!(
                    record.membership,
                    MembershipState::Join | MembershipState::Invite | MembershipState::Knock
                ) {
                    continue;
                }
                let was_joined = record.membership == MembershipState::Join;
                let left = self
                    .set_membership(&user, room_id, &user, MembershipState::Leave, None)
                    .await;
                match left {
                    Ok(()) => {
                        if let Some(new_room) = &result.new_room_id
                            && was_joined
                            && let Err(err) = self.join_room(&user, new_room).await
                        {
                            tracing::warn!(user = %user, %err, "could not move a user to the replacement room");
                        }
                        result.kicked_users.push(user);
                    }
                    Err(err) => {
                        tracing::warn!(user = %user, room = %room_id, %err, "could not remove a user from a deleted room");
                        result.failed_to_kick_users.push(user);
                    }
                }
            }
        }
        result.local_aliases = self.remove_room_from_directory(room_id)?;
        purging(&result);
        if request.purge {
            self.rooms.purge(room_id).await?;
            self.mark_room_deleted(room_id)?;
        }
        tracing::info!(room = %room_id, by = ?by, block = request.block, purge = request.purge, kicked = result.kicked_users.len(), "room deleted");
        Ok(result)
    }

    async fn create_replacement_room(
        &self,
        owner: &UserId,
        request: &DeleteRequest,
    ) -> Result<OwnedRoomId> {
        let room_id = self
            .create_room(
                owner,
                CreateRoom {
                    preset: Some(Preset::PublicChat),
                    name: Some(
                        request
                            .room_name
                            .clone()
                            .unwrap_or_else(|| DEFAULT_ROOM_NAME.into()),
                    ),
                    // Members can read the notice but not post.
                    power_level_content_override: Some(serde_json::json!({"users_default": -10})),
                    ..CreateRoom::default()
                },
            )
            .await?;
        let message = request
            .message
            .clone()
            .unwrap_or_else(|| DEFAULT_MESSAGE.into());
        self.append_event(
            &room_id,
            owner,
            NewEvent::message(
                ruma::events::TimelineEventType::RoomMessage,
                serde_json::json!({"msgtype": "m.text", "body": message}),
            ),
            None,
        )
        .await?;
        Ok(room_id)
    }
}
