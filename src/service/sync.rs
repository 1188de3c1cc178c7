//! `/sync`: everything relevant to a user between two stream positions, and the long poll that
//! waits for it.
//!
//! A request subscribes to the stream's published position *before* reading, computes what
//! changed in `(since, now]`, and if nothing did, waits for the position to move (or the timeout)
//! and looks again. Positions are published only once every lower one has committed, so a token
//! never runs ahead of an event that is not yet readable.

use ruma::api::client::filter::FilterDefinition;
use ruma::events::StateEventType;
use ruma::events::room::member::MembershipState;
use ruma::{OwnedRoomId, OwnedUserId, UserId};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Result;
use crate::service::Services;
use crate::service::filters::Lists;
use crate::service::rooms::RoomRecord;
use crate::service::rooms::pdu::StoredPdu;
use crate::service::rooms::state::Snapshots;

/// Timeline events per room when the filter does not say.
const DEFAULT_TIMELINE_LIMIT: usize = 10;
const MAX_TIMELINE_LIMIT: usize = 100;
/// Longest long poll, whatever the client asks.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// State shown to invitees (the spec's recommended stripped state).
const STRIPPED_STATE: &[StateEventType] = &[
    StateEventType::RoomCreate,
    StateEventType::RoomJoinRules,
    StateEventType::RoomName,
    StateEventType::RoomAvatar,
    StateEventType::RoomCanonicalAlias,
    StateEventType::RoomEncryption,
    StateEventType::RoomTopic,
];

/// A filter's `limit`, or no limit.
fn limit_of(limit: Option<ruma::UInt>) -> usize {
    limit.map_or(usize::MAX, |l| {
        usize::try_from(u64::from(l)).unwrap_or(usize::MAX)
    })
}

pub struct SyncRequest {
    /// The syncing device (to-device messages are per device).
    pub device: ruma::OwnedDeviceId,
    pub since: Option<u64>,
    /// The typing position of the `since` token (typing has its own, in-memory position).
    pub since_typing: u64,
    /// The presence position of the `since` token (in memory too).
    pub since_presence: u64,
    /// `set_presence`: what this sync says about the user (online unless told otherwise).
    pub set_presence: ruma::presence::PresenceState,
    pub full_state: bool,
    pub timeout: Duration,
    pub filter: FilterDefinition,
    /// `use_state_after`: state up to the end of the timeline instead of its start.
    pub state_after: bool,
}

/// One room's part of a sync.
#[derive(Debug, Default)]
pub struct RoomUpdate {
    pub timeline: Vec<StoredPdu>,
    pub limited: bool,
    /// Token for `/messages` backwards from the start of the timeline.
    pub prev_batch: u64,
    pub state: Vec<StoredPdu>,
    pub account_data: Vec<(String, Value)>,
    /// Who is typing, when that changed.
    pub typing: Option<Vec<OwnedUserId>>,
    /// `m.receipt` content for receipts that changed.
    pub receipts: Option<Value>,
    /// Notification and highlight counts past the user's read receipts.
    pub unread: crate::service::notifications::Unread,
    /// (joined, invited, heroes) when membership may have changed.
    pub summary: Option<(u64, u64, Vec<OwnedUserId>)>,
}

#[derive(Debug, Default)]
pub struct SyncResult {
    pub next_batch: u64,
    pub next_typing: u64,
    pub next_presence: u64,
    /// `m.presence` events of the user and people who share a room with them.
    pub presence: Vec<Value>,
    pub joined: BTreeMap<OwnedRoomId, RoomUpdate>,
    pub left: BTreeMap<OwnedRoomId, RoomUpdate>,
    /// Stripped state per invited room.
    pub invited: BTreeMap<OwnedRoomId, Vec<Value>>,
    pub knocked: BTreeMap<OwnedRoomId, Vec<Value>>,
    pub account_data: Vec<(String, Value)>,
    pub to_device: Vec<Value>,
    /// `device_lists`: users whose keys changed, users no longer sharing a room.
    pub device_lists: (Vec<OwnedUserId>, Vec<OwnedUserId>),
    /// One-time keys left on the syncing device, per algorithm.
    pub one_time_key_counts: BTreeMap<String, u64>,
    /// Algorithms with an unused fallback key on the syncing device.
    pub unused_fallback_key_types: Vec<String>,
}

impl SyncResult {
    fn is_empty(&self) -> bool {
        self.joined.is_empty()
            && self.left.is_empty()
            && self.invited.is_empty()
            && self.knocked.is_empty()
            && self.account_data.is_empty()
            && self.to_device.is_empty()
            && self.presence.is_empty()
            && self.device_lists.0.is_empty()
            && self.device_lists.1.is_empty()
    }
}

impl Services {
    pub async fn sync(&self, user: &UserId, request: SyncRequest) -> Result<SyncResult> {
        let _in_flight = self.metrics.sync_started();
        // Subscribe first: a write landing between the read and the wait still wakes us.
        let mut wake = self.stream.notifier.subscribe(user);
        let mut published = self.stream.subscribe();
        // `set_presence=offline` (or anything unknown) leaves the user's presence alone.
        if let state @ (ruma::presence::PresenceState::Online
        | ruma::presence::PresenceState::Unavailable) = &request.set_presence
        {
            self.set_presence(user, state.clone(), None)?;
        }
        let mut shutting_down = self.shutting_down.subscribe();
        let deadline = tokio::time::Instant::now() + request.timeout.min(MAX_TIMEOUT);
        // Typing and presence positions restart with the server: a token from before counts
        // from zero.
        let typing_now = self.typing.position();
        let since_typing = if request.since_typing > typing_now {
            0
        } else {
            request.since_typing
        };
        let presence_now = self.presence.position();
        let since_presence = if request.since_presence > presence_now {
            0
        } else {
            request.since_presence
        };
        loop {
            let cursor = *wake.borrow_and_update();
            let concerned = request.since.is_none_or(|since| cursor.stream > since)
                || request.full_state
                || cursor.typing > since_typing
                || cursor.presence > since_presence;
            if concerned {
                // The change may be written but not yet published (a lower position is still
                // in flight): wait for it, so the token handed out covers it.
                let target = cursor.stream;
                let _ =
                    tokio::time::timeout_at(deadline, published.wait_for(|p| *p >= target)).await;
                let upto = *published.borrow_and_update();
                let since = request.since.map(|since| since.min(upto));
                let typing_now = self.typing.position();
                let mut result =
                    self.sync_once(user, &request, since, upto, since_typing, typing_now)?;
                result.next_presence = self.presence.position();
                let presence_filter = Lists::from(&request.filter.presence);
                result.presence = self
                    .presence_updates(user, if since.is_none() { 0 } else { since_presence })?
                    .into_iter()
                    .filter(|event| {
                        presence_filter
                            .pass("m.presence", event["sender"].as_str().unwrap_or_default())
                    })
                    .take(limit_of(request.filter.presence.limit))
                    .collect();
                if !result.is_empty() || since.is_none() || request.full_state {
                    return Ok(result);
                }
            }
            if *shutting_down.borrow_and_update() || tokio::time::Instant::now() >= deadline {
                return Ok(self.nothing_new(&request, since_typing, since_presence));
            }
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, wake.changed()) => match changed {
                    Ok(Ok(())) => continue,
                    _ => return Ok(self.nothing_new(&request, since_typing, since_presence)),
                },
                _ = shutting_down.changed() => {
                    return Ok(self.nothing_new(&request, since_typing, since_presence));
                }
            }
        }
    }

    /// The answer when nothing concerning the user happened: the same tokens, no data. (Not
    /// the published position: positions in between may concern the user and are still in
    /// flight, so the next sync must start where this one did.)
    fn nothing_new(&self, request: &SyncRequest, typing: u64, presence: u64) -> SyncResult {
        SyncResult {
            next_batch: request.since.unwrap_or(0),
            next_typing: typing,
            next_presence: presence,
            ..SyncResult::default()
        }
    }

    fn sync_once(
        &self,
        user: &UserId,
        request: &SyncRequest,
        since: Option<u64>,
        upto: u64,
        since_typing: u64,
        typing_now: u64,
    ) -> Result<SyncResult> {
        let room_filter = &request.filter.room;
        let limit = room_filter
            .timeline
            .limit
            .map_or(DEFAULT_TIMELINE_LIMIT, |l| {
                usize::try_from(u64::from(l)).unwrap_or(MAX_TIMELINE_LIMIT)
            })
            .clamp(1, MAX_TIMELINE_LIMIT);
        let since_position = since.unwrap_or(0);
        // Read once per sync: events and invites from these users are left out.
        let ignored = self.account_data.ignored_users(user)?;
        let mut result = SyncResult {
            next_batch: upto,
            next_typing: typing_now,
            ..SyncResult::default()
        };

        result.to_device = self
            .to_device
            .take(user, &request.device, since_position, upto)?;
        if since.is_some() {
            let (changed, left) = self.device_list_changes(user, since_position, upto)?;
            result.device_lists = (changed.into_iter().collect(), left.into_iter().collect());
        }
        result.one_time_key_counts = self.keys.one_time_key_counts(user, &request.device)?;
        result.unused_fallback_key_types =
            self.keys.unused_fallback_key_types(user, &request.device)?;

        let mut room_account_data: BTreeMap<OwnedRoomId, Vec<(String, Value)>> = BTreeMap::new();
        let global_filter = Lists::from(&request.filter.account_data);
        let room_data_filter = Lists::from(&room_filter.account_data);
        for (room, kind, content) in self.account_data.changes(user, since_position, upto)? {
            match room {
                None if global_filter.pass(&kind, user.as_str()) => {
                    result.account_data.push((kind, content))
                }
                Some(room) if room_data_filter.pass(&kind, user.as_str()) => room_account_data
                    .entry(room)
                    .or_default()
                    .push((kind, content)),
                _ => {}
            }
        }
        result
            .account_data
            .truncate(limit_of(request.filter.account_data.limit));
        let ephemeral = Lists::from(&room_filter.ephemeral);

        for (room_id, record) in self.rooms.rooms_of(user)? {
            if record.position > upto
                || room_filter
                    .rooms
                    .as_ref()
                    .is_some_and(|rooms| !rooms.contains(&room_id))
                || room_filter.not_rooms.contains(&room_id)
            {
                continue;
            }
            let changed = since.is_none() || record.position > since_position;
            let Some(room) = self.rooms.room(&room_id)? else {
                continue;
            };
            match record.membership {
                MembershipState::Join => {
                    // Newly joined rooms start from scratch: full state, latest events.
                    let fresh = changed || request.full_state;
                    let lower = if changed { 0 } else { since_position };
                    let account_data = room_account_data.remove(&room_id).unwrap_or_default();
                    // Who is typing: all current typers for a fresh room, changes otherwise.
                    let typing = match ephemeral.pass_type("m.typing") {
                        true => self
                            .typing
                            .changed_since(&room_id, if fresh { 0 } else { since_typing })?
                            .filter(|users| !(fresh && users.is_empty())),
                        false => None,
                    };
                    let receipts = match ephemeral.pass_type("m.receipt") {
                        true => self.receipts.changes(
                            &room_id,
                            user,
                            if fresh { 0 } else { since_position },
                            upto,
                        )?,
                        false => None,
                    };
                    let quiet = room.last_position != 0 && room.last_position <= since_position;
                    if !fresh
                        && quiet
                        && account_data.is_empty()
                        && typing.is_none()
                        && receipts.is_none()
                    {
                        continue;
                    }
                    let mut update = self
                        .room_update(user, &ignored, &room, request, lower, upto, limit, fresh)?;
                    update.typing = typing;
                    update.receipts = receipts;
                    if !fresh
                        && update.timeline.is_empty()
                        && update.state.is_empty()
                        && account_data.is_empty()
                        && update.typing.is_none()
                        && update.receipts.is_none()
                    {
                        continue;
                    }
                    update.unread = self.unread_counts(
                        user,
                        &room_id,
                        room_filter.timeline.unread_thread_notifications,
                    )?;
                    update.account_data = account_data;
                    let membership_changed = fresh
                        || update
                            .timeline
                            .iter()
                            .chain(&update.state)
                            .any(|pdu| pdu.kind_is("m.room.member"));
                    if membership_changed {
                        update.summary = Some(self.summary(&room_id, user)?);
                    }
                    result.joined.insert(room_id, update);
                }
                MembershipState::Invite
                    if changed && !self.invited_by_ignored(&ignored, &record.event_id)? =>
                {
                    result.invited.insert(
                        room_id.clone(),
                        self.stripped_state(&room, &record.event_id)?,
                    );
                }
                MembershipState::Knock if changed => {
                    result.knocked.insert(
                        room_id.clone(),
                        self.stripped_state(&room, &record.event_id)?,
                    );
                }
                MembershipState::Leave | MembershipState::Ban
                    if changed && (since.is_some() || room_filter.include_leave) =>
                {
                    // Up to and including the event that removed the user.
                    let until = record.position;
                    let update = self.room_update(
                        user,
                        &ignored,
                        &room,
                        request,
                        since_position,
                        until,
                        limit,
                        since.is_none(),
                    )?;
                    result.left.insert(room_id, update);
                }
                _ => {}
            }
        }
        Ok(result)
    }

    /// Timeline and state of one room for positions in `(lower, upper]`.
    #[allow(clippy::too_many_arguments)]
    fn room_update(
        &self,
        user: &UserId,
        ignored: &std::collections::HashSet<String>,
        room: &RoomRecord,
        request: &SyncRequest,
        lower: u64,
        upper: u64,
        limit: usize,
        fresh: bool,
    ) -> Result<RoomUpdate> {
        let filter = &request.filter.room.timeline;
        let current = self.rooms.current_membership(&room.room_id, user)?;
        let mut timeline = Vec::new();
        let mut limited = false;
        let mut cursor = Some(upper);
        'scan: while let Some(from) = cursor {
            let page = self.rooms.timeline(room, Some(from), false, limit + 1)?;
            if page.is_empty() {
                break;
            }
            for pdu in page {
                if pdu.position <= lower {
                    break 'scan;
                }
                cursor = pdu.position.checked_sub(1);
                let ignored = pdu
                    .json
                    .get("sender")
                    .and_then(|s| s.as_str())
                    .is_some_and(|s| ignored.contains(s));
                if !ignored
                    && pdu.matches(filter)
                    && self.rooms.can_see(user, &pdu, current.as_ref())?
                {
                    if timeline.len() == limit {
                        limited = true;
                        break 'scan;
                    }
                    timeline.push(pdu);
                }
            }
        }
        timeline.reverse();

        let base = if fresh {
            Snapshots::EMPTY
        } else {
            self.rooms.snapshot_at(room, lower + 1)?
        };
        let target = match (request.state_after, timeline.first()) {
            (false, Some(first)) => first.state_before,
            _ => self.rooms.snapshot_at(room, upper + 1)?,
        };
        let mut state = self.rooms.state_difference(base, target)?;
        if request.state_after {
            // With state_after the timeline's state events are also in `state`.
        } else {
            state.retain(|pdu| !timeline.iter().any(|event| event.event_id == pdu.event_id));
        }
        let state_filter = &request.filter.room.state;
        state.retain(|pdu| pdu.matches(state_filter));
        if !state_filter.lazy_load_options.is_disabled() {
            self.lazy_load_members(user, &timeline, target, &mut state)?;
        }
        let prev_batch = timeline.first().map_or(upper + 1, |pdu| pdu.position);
        Ok(RoomUpdate {
            timeline,
            limited,
            prev_batch,
            state,
            ..RoomUpdate::default()
        })
    }

    /// Lazy-loading: of the member events, only those of the timeline's senders and the user's
    /// own. A sender's member event is sent even when the client may have it already (the
    /// spec allows such redundancy; the server does not track what each device has seen).
    fn lazy_load_members(
        &self,
        user: &UserId,
        timeline: &[StoredPdu],
        snapshot: u64,
        state: &mut Vec<StoredPdu>,
    ) -> Result<()> {
        let sender = |pdu: &StoredPdu| {
            pdu.json
                .get("sender")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        };
        let mut wanted: std::collections::BTreeSet<String> =
            timeline.iter().filter_map(sender).collect();
        if !wanted.is_empty() || !state.is_empty() {
            wanted.insert(user.to_string());
        }
        let state_key = |pdu: &StoredPdu| {
            pdu.json
                .get("state_key")
                .and_then(|k| k.as_str())
                .map(str::to_owned)
        };
        state.retain(|pdu| {
            !pdu.kind_is("m.room.member") || state_key(pdu).is_some_and(|key| wanted.contains(&key))
        });
        for member in wanted {
            let present = state.iter().chain(timeline).any(|pdu| {
                pdu.kind_is("m.room.member") && state_key(pdu).as_deref() == Some(&member)
            });
            if !present
                && let Some(pdu) =
                    self.rooms
                        .state_event_at(snapshot, &StateEventType::RoomMember, &member)?
            {
                state.push(pdu);
            }
        }
        Ok(())
    }

    fn summary(
        &self,
        room_id: &ruma::RoomId,
        user: &UserId,
    ) -> Result<(u64, u64, Vec<OwnedUserId>)> {
        let members = self.rooms.members_of(room_id)?;
        let count = |state: MembershipState| {
            members
                .iter()
                .filter(|(_, m)| m.membership == state)
                .count() as u64
        };
        let heroes = members
            .iter()
            .filter(|(id, m)| {
                id != user
                    && matches!(
                        m.membership,
                        MembershipState::Join | MembershipState::Invite
                    )
            })
            .take(5)
            .map(|(id, _)| id.clone())
            .collect();
        Ok((
            count(MembershipState::Join),
            count(MembershipState::Invite),
            heroes,
        ))
    }

    /// Presence changes after `since` of the user and of people who share a joined room.
    fn presence_updates(&self, user: &UserId, since: u64) -> Result<Vec<Value>> {
        let changed = self.presence.changed_since(since)?;
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let mine = self.rooms.joined_room_ids(user)?;
        let mut events = Vec::new();
        for (other, presence) in changed {
            if other == user || !self.rooms.joined_room_ids(&other)?.is_disjoint(&mine) {
                events.push(
                    json!({"type": "m.presence", "sender": other, "content": presence.content()}),
                );
            }
        }
        Ok(events)
    }

    /// Whether the invite event came from someone `user` ignores.
    fn invited_by_ignored(
        &self,
        ignored: &std::collections::HashSet<String>,
        invite: &ruma::EventId,
    ) -> Result<bool> {
        if ignored.is_empty() {
            return Ok(false);
        }
        Ok(self
            .rooms
            .pdu(invite)?
            .and_then(|pdu| {
                pdu.json
                    .get("sender")
                    .and_then(|s| s.as_str())
                    .map(|s| ignored.contains(s))
            })
            .unwrap_or(false))
    }

    /// What an invitee (or knocker) may see of a room: a few state events, stripped.
    fn stripped_state(&self, room: &RoomRecord, own_event: &ruma::EventId) -> Result<Vec<Value>> {
        let mut events = Vec::new();
        for kind in STRIPPED_STATE {
            if let Some(pdu) = self.rooms.state_event_at(room.snapshot, kind, "")? {
                events.push(stripped(&pdu));
            }
        }
        if let Some(pdu) = self.rooms.pdu(own_event)? {
            events.push(stripped(&pdu));
        }
        Ok(events)
    }
}

fn stripped(pdu: &StoredPdu) -> Value {
    let field = |key: &str| {
        pdu.json
            .get(key)
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or(Value::Null)
    };
    json!({"type": field("type"), "state_key": field("state_key"), "content": field("content"), "sender": field("sender")})
}
