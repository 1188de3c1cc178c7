//! Profiles: a user's display name and avatar, and their copies in the user's member events.
//!
//! A change is stored at once and then written as a new member event into every room the user
//! has joined, so other members see it; for users in many rooms that runs in the background.

use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomId, UserId};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::service::Services;

/// The longest display name accepted, in bytes.
const MAX_DISPLAYNAME: usize = 256;
/// Up to this many rooms are updated before the request returns; more go to the background.
const INLINE_ROOMS: usize = 10;

pub struct Profile {
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
}

/// A display name must fit `MAX_DISPLAYNAME` bytes and an avatar must be an `mxc://` URI.
pub fn check_profile(displayname: Option<&str>, avatar_url: Option<&str>) -> Result<()> {
    if displayname.is_some_and(|name| name.len() > MAX_DISPLAYNAME) {
        return Err(Error::bad_json(format!(
            "A display name is at most {MAX_DISPLAYNAME} bytes"
        )));
    }
    if avatar_url.is_some_and(|url| <&ruma::MxcUri>::from(url).validate().is_err()) {
        return Err(Error::bad_json("avatar_url must be an mxc:// URI"));
    }
    Ok(())
}

impl Services {
    /// A local user's profile; 404 for users that do not exist.
    pub fn profile(&self, user: &UserId) -> Result<Profile> {
        let account = self
            .users
            .get(user)?
            .filter(|_| self.users.is_local(user))
            .ok_or_else(|| Error::not_found(format!("No profile for {user}")))?;
        Ok(Profile {
            displayname: account.displayname,
            avatar_url: account.avatar_url,
        })
    }

    /// Sets the display name and/or avatar (`Some(None)` clears one) and updates the user's
    /// member event in each joined room.
    pub async fn set_profile(
        self: &Arc<Self>,
        user: &UserId,
        displayname: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    ) -> Result<()> {
        check_profile(
            displayname.as_ref().and_then(Option::as_deref),
            avatar_url.as_ref().and_then(Option::as_deref),
        )?;
        let mut batch = self.db.batch();
        self.users
            .set_profile(&mut batch, user, displayname, avatar_url)?;
        batch.commit()?;

        let rooms: Vec<OwnedRoomId> = self.rooms.joined_room_ids(user)?.into_iter().collect();
        let (now, later) = rooms.split_at(rooms.len().min(INLINE_ROOMS));
        for room in now {
            self.refresh_member_event(user, room).await;
        }
        if !later.is_empty() {
            let services = Arc::clone(self);
            let (user, later) = (user.to_owned(), later.to_vec());
            tokio::spawn(async move {
                for room in later {
                    services.refresh_member_event(&user, &room).await;
                }
            });
        }
        Ok(())
    }

    /// Writes the user's current profile into their join event in `room` (best effort: a room
    /// where they may not change their member event keeps the old one).
    async fn refresh_member_event(&self, user: &UserId, room: &ruma::RoomId) {
        let result = async {
            let mut content = self.member_content(user, MembershipState::Join)?;
            // Keep what else the join event said (e.g. `is_direct` is only on invites, but
            // clients may add their own fields).
            if let Some(record) = self.rooms.room(room)?
                && let Some(current) = self.rooms.state_event_at(
                    record.snapshot,
                    &ruma::events::StateEventType::RoomMember,
                    user.as_str(),
                )?
                && let Some(old) = current.content().as_object()
            {
                for (key, value) in old {
                    if !matches!(key.as_str(), "displayname" | "avatar_url" | "membership") {
                        content[key] = value.clone();
                    }
                }
            }
            self.append_event(
                room,
                user,
                crate::service::rooms::NewEvent::state(
                    ruma::events::StateEventType::RoomMember,
                    user.as_str(),
                    content,
                ),
                None,
            )
            .await
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(%err, %user, %room, "could not update the member event with the new profile");
        }
    }
}
