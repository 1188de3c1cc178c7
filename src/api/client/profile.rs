//! `GET /profile/{userId}` and `GET|PUT /profile/{userId}/displayname|avatar_url`.

use axum::extract::State;
use ruma::api::client::profile::{
    get_avatar_url, get_display_name, get_profile, set_avatar_url, set_display_name,
};
use ruma::{OwnedMxcUri, UserId};
use serde_json::{Map, Value, json};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(profile)
        .ruma(displayname)
        .ruma(avatar_url)
        .ruma(set_displayname)
        .ruma(set_avatar)
}

fn only_own(caller: &UserId, target: &UserId) -> Result<()> {
    if caller != target {
        return Err(Error::forbidden("You can only change your own profile"));
    }
    Ok(())
}

async fn profile(
    State(services): State<AppState>,
    request: Ruma<get_profile::v3::Request>,
) -> Result<get_profile::v3::Response> {
    let found = services.profile(&request.body.user_id)?;
    let mut fields = Map::new();
    if let Some(name) = found.displayname {
        fields.insert("displayname".into(), json!(name));
    }
    if let Some(url) = found.avatar_url {
        fields.insert("avatar_url".into(), json!(url));
    }
    let data: ruma::api::client::profile::UserProfile =
        serde_json::from_value(Value::Object(fields)).map_err(Error::internal)?;
    Ok(get_profile::v3::Response::from(data))
}

async fn displayname(
    State(services): State<AppState>,
    request: Ruma<get_display_name::v3::Request>,
) -> Result<get_display_name::v3::Response> {
    let found = services.profile(&request.body.user_id)?;
    Ok(get_display_name::v3::Response::new(found.displayname))
}

async fn avatar_url(
    State(services): State<AppState>,
    request: Ruma<get_avatar_url::v3::Request>,
) -> Result<get_avatar_url::v3::Response> {
    let found = services.profile(&request.body.user_id)?;
    Ok(get_avatar_url::v3::Response::new(
        found.avatar_url.map(OwnedMxcUri::from),
    ))
}

async fn set_displayname(
    State(services): State<AppState>,
    request: Ruma<set_display_name::v3::Request>,
) -> Result<set_display_name::v3::Response> {
    let caller = &request.identity()?.user_id;
    only_own(caller, &request.body.user_id)?;
    let name = request.body.displayname.clone().filter(|n| !n.is_empty());
    services.set_profile(caller, Some(name), None).await?;
    Ok(set_display_name::v3::Response::new())
}

async fn set_avatar(
    State(services): State<AppState>,
    request: Ruma<set_avatar_url::v3::Request>,
) -> Result<set_avatar_url::v3::Response> {
    let caller = &request.identity()?.user_id;
    only_own(caller, &request.body.user_id)?;
    let url = request.body.avatar_url.as_ref().map(ToString::to_string);
    services.set_profile(caller, None, Some(url)).await?;
    Ok(set_avatar_url::v3::Response::new())
}
