//! What a client reads before logging in: supported versions, `.well-known`, capabilities.

use crate::service::rooms::create::{CREATABLE_VERSIONS, DEFAULT_VERSION};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
#[allow(deprecated)] // m.set_displayname and m.set_avatar_url: clients in use still read them
use ruma::api::client::discovery::get_capabilities::v3::{
    Capabilities, ChangePasswordCapability, RoomVersionStability, RoomVersionsCapability,
    SetAvatarUrlCapability, SetDisplayNameCapability, ThirdPartyIdChangesCapability,
};
use ruma::api::client::discovery::{get_capabilities, get_supported_versions};
use serde_json::json;
use std::collections::BTreeMap;

use crate::api::ruma::{AppState, Ruma, RumaResponse, RumaRouter as _};
use crate::error::Result;

/// Spec versions whose client-server behaviour Myelin follows for the endpoints it serves.
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8",
    "v1.9", "v1.10", "v1.11", "v1.12",
];

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        // Served without looking at tokens: clients call it before and after logging in, and
        // an expired token must not make it fail.
        .route("/_matrix/client/versions", get(versions))
        .route("/.well-known/matrix/client", get(well_known_client))
        .ruma(capabilities)
}

async fn versions() -> RumaResponse<get_supported_versions::Response> {
    let mut response = get_supported_versions::Response::new(
        SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()).collect(),
    );
    response.unstable_features = BTreeMap::new();
    RumaResponse(response)
}

async fn well_known_client(State(services): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "m.homeserver": { "base_url": services.config.base_url() } }))
}

#[allow(deprecated)] // see the import
async fn capabilities(
    State(_services): State<AppState>,
    _request: Ruma<get_capabilities::v3::Request>,
) -> Result<get_capabilities::v3::Response> {
    let mut capabilities = Capabilities::new();
    capabilities.change_password = ChangePasswordCapability::new(true);
    capabilities.room_versions = RoomVersionsCapability::new(
        DEFAULT_VERSION,
        CREATABLE_VERSIONS
            .iter()
            .map(|v| (v.clone(), RoomVersionStability::Stable))
            .collect(),
    );
    capabilities.set_displayname = SetDisplayNameCapability::new(true);
    capabilities.set_avatar_url = SetAvatarUrlCapability::new(true);
    capabilities.thirdparty_id_changes = ThirdPartyIdChangesCapability::new(false);
    Ok(get_capabilities::v3::Response::new(capabilities))
}
