//! Sessions: login flows, password login, refresh, whoami, logout.

use axum::extract::State;
use ruma::api::client::account::whoami;
use ruma::api::client::session::get_login_types::v3::{LoginType, PasswordLoginType};
use ruma::api::client::session::login::v3::{DiscoveryInfo, HomeserverInfo, LoginInfo};
use ruma::api::client::session::{get_login_types, login, logout, logout_all, refresh_token};
use ruma::api::client::uiaa::UserIdentifier;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(login_types)
        .ruma(login)
        .ruma(refresh)
        .ruma(whoami)
        .ruma(logout)
        .ruma(logout_all)
}

async fn login_types(
    State(_services): State<AppState>,
    _request: Ruma<get_login_types::v3::Request>,
) -> Result<get_login_types::v3::Response> {
    Ok(get_login_types::v3::Response::new(vec![
        LoginType::Password(PasswordLoginType::new()),
    ]))
}

#[allow(deprecated)] // the legacy `user`, `medium`, `address` and `home_server` fields
async fn login(
    State(services): State<AppState>,
    request: Ruma<login::v3::Request>,
) -> Result<login::v3::Response> {
    let client = request.client_ip.to_string();
    let body = request.body;
    let LoginInfo::Password(password) = &body.login_info else {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::Unknown,
            "Unsupported login type",
        ));
    };
    // The current `identifier` form, or the legacy top-level `user` field older clients send.
    let user = match (&password.identifier, &password.user) {
        (Some(UserIdentifier::Matrix(id)), _) => id.user.as_str(),
        (Some(_), _) => {
            return Err(Error::forbidden(
                "Third-party identifiers are not supported on this server",
            ));
        }
        (None, Some(user)) => user.as_str(),
        (None, None) => {
            if password.medium.is_some() || password.address.is_some() {
                return Err(Error::forbidden(
                    "Third-party identifiers are not supported on this server",
                ));
            }
            return Err(Error::missing_param("Missing user identifier"));
        }
    };
    let (user_id, session) = services
        .login_with_password(
            user,
            &password.password,
            body.device_id.clone(),
            body.initial_device_display_name.clone(),
            body.refresh_token,
            &client,
        )
        .await?;
    let mut response = login::v3::Response::new(user_id, session.access_token, session.device_id);
    response.home_server = Some(services.server_name.clone());
    response.refresh_token = session.refresh_token;
    response.expires_in = session.expires_in;
    response.well_known = Some(DiscoveryInfo::new(HomeserverInfo::new(
        services.config.base_url(),
    )));
    Ok(response)
}

async fn refresh(
    State(services): State<AppState>,
    request: Ruma<refresh_token::v3::Request>,
) -> Result<refresh_token::v3::Response> {
    let session = services.devices.refresh(&request.body.refresh_token)?;
    let mut response = refresh_token::v3::Response::new(session.access_token);
    response.refresh_token = session.refresh_token;
    response.expires_in_ms = session.expires_in;
    Ok(response)
}

async fn whoami(
    State(services): State<AppState>,
    request: Ruma<whoami::v3::Request>,
) -> Result<whoami::v3::Response> {
    let identity = request.identity()?;
    let is_guest = services
        .users
        .get(&identity.user_id)?
        .is_some_and(|account| account.is_guest);
    let mut response = whoami::v3::Response::new(identity.user_id.clone(), is_guest);
    response.device_id = Some(identity.device_id.clone());
    Ok(response)
}

async fn logout(
    State(services): State<AppState>,
    request: Ruma<logout::v3::Request>,
) -> Result<logout::v3::Response> {
    let identity = request.identity()?;
    services.delete_devices(&identity.user_id, &[&identity.device_id])?;
    Ok(logout::v3::Response::new())
}

async fn logout_all(
    State(services): State<AppState>,
    request: Ruma<logout_all::v3::Request>,
) -> Result<logout_all::v3::Response> {
    services.logout_all(&request.identity()?.user_id)?;
    Ok(logout_all::v3::Response::new())
}
