//! The account itself: password change, deactivation, third-party ids (none are supported).

use axum::extract::State;
use ruma::api::client::account::{
    ThirdPartyIdRemovalStatus, change_password, deactivate, get_3pids,
};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::uiaa::password_flows;
use crate::service::users::check_new_password;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(change_password)
        .ruma(deactivate)
        .ruma(third_party_ids)
}

async fn change_password(
    State(services): State<AppState>,
    request: Ruma<change_password::v3::Request>,
) -> Result<change_password::v3::Response> {
    // Without email support there is no password reset: a logged-in user is required.
    let identity = request.identity.clone().ok_or_else(Error::missing_token)?;
    let body = request.body;
    check_new_password(&body.new_password)?;
    let flows = password_flows("account/password", &identity.user_id);
    services
        .uiaa
        .authenticate(&services, flows, body.auth.as_ref())
        .await?;
    services
        .change_password(&identity, &body.new_password, body.logout_devices)
        .await?;
    Ok(change_password::v3::Response::new())
}

async fn deactivate(
    State(services): State<AppState>,
    request: Ruma<deactivate::v3::Request>,
) -> Result<deactivate::v3::Response> {
    let identity = request.identity.clone().ok_or_else(Error::missing_token)?;
    let body = request.body;
    let flows = password_flows("account/deactivate", &identity.user_id);
    services
        .uiaa
        .authenticate(&services, flows, body.auth.as_ref())
        .await?;
    services.deactivate(&identity.user_id, body.erase).await?;
    Ok(deactivate::v3::Response::new(
        ThirdPartyIdRemovalStatus::NoSupport,
    ))
}

async fn third_party_ids(
    State(_services): State<AppState>,
    request: Ruma<get_3pids::v3::Request>,
) -> Result<get_3pids::v3::Response> {
    request.identity()?;
    Ok(get_3pids::v3::Response::new(Vec::new()))
}
