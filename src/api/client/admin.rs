//! Server administration (client API): `GET /v3/admin/whois/{userId}`, for a server admin or
//! the user themself. The Synapse admin API's `whois` answers the same.

use axum::extract::State;
use ruma::api::client::admin::get_user_info::v3::{
    ConnectionInfo, DeviceInfo, Request, Response, SessionInfo,
};
use ruma::{MilliSecondsSinceUnixEpoch, UInt, UserId};
use std::collections::BTreeMap;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(whois)
}

async fn whois(State(services): State<AppState>, request: Ruma<Request>) -> Result<Response> {
    let caller = &request.identity()?.user_id;
    let user = &request.body.user_id;
    if caller != user && !services.users.is_admin(caller)? {
        return Err(Error::forbidden("You may only look up yourself"));
    }
    if !services.users.is_local(user) || !services.users.exists(user)? {
        return Err(Error::not_found("User not found"));
    }
    let mut response = Response::new();
    response.user_id = Some(user.clone());
    response.devices = sessions(&services, user)?;
    Ok(response)
}

/// Each device of the user with where and when it was last seen (one session per device: the
/// server keeps no finer history). User agents are not recorded.
pub fn sessions(services: &Services, user: &UserId) -> Result<BTreeMap<String, DeviceInfo>> {
    let mut devices = BTreeMap::new();
    for (device_id, device) in services.devices.list(user)? {
        let mut connection = ConnectionInfo::new();
        connection.ip = device.last_seen_ip;
        connection.last_seen = device
            .last_seen_ts
            .and_then(|ts| UInt::new(ts).map(MilliSecondsSinceUnixEpoch));
        let mut session = SessionInfo::new();
        if connection.ip.is_some() || connection.last_seen.is_some() {
            session.connections.push(connection);
        }
        let mut info = DeviceInfo::new();
        info.sessions.push(session);
        devices.insert(device_id.to_string(), info);
    }
    Ok(devices)
}
