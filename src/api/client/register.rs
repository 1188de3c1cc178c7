//! Registration: `POST /register` (UIA), name availability, registration-token validity.

use axum::extract::State;
use ruma::api::client::account::register::RegistrationKind;
use ruma::api::client::account::{
    check_registration_token_validity, get_username_availability, register,
};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::account::Registration;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(register)
        .ruma(username_available)
        .ruma(token_validity)
}

async fn register(
    State(services): State<AppState>,
    request: Ruma<register::v3::Request>,
) -> Result<register::v3::Response> {
    let client = request.client_ip.to_string();
    let body = request.body;
    let registered = services
        .register(Registration {
            username: body.username,
            password: body.password,
            guest: body.kind == RegistrationKind::Guest,
            device_id: body.device_id,
            initial_device_display_name: body.initial_device_display_name,
            inhibit_login: body.inhibit_login,
            refresh_token: body.refresh_token,
            auth: body.auth,
            client,
        })
        .await?;
    let mut response = register::v3::Response::new(registered.user_id);
    if let Some(session) = registered.session {
        response.access_token = Some(session.access_token);
        response.device_id = Some(session.device_id);
        response.refresh_token = session.refresh_token;
        response.expires_in = session.expires_in;
    }
    Ok(response)
}

async fn username_available(
    State(services): State<AppState>,
    request: Ruma<get_username_availability::v3::Request>,
) -> Result<get_username_availability::v3::Response> {
    if !services.config.allow_registration {
        return Err(Error::forbidden("Registration is disabled on this server"));
    }
    let user_id = services.users.new_user_id(&request.body.username)?;
    if services.users.exists(&user_id)? {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::UserInUse,
            "User ID already taken",
        ));
    }
    Ok(get_username_availability::v3::Response::new(true))
}

async fn token_validity(
    State(services): State<AppState>,
    request: Ruma<check_registration_token_validity::v1::Request>,
) -> Result<check_registration_token_validity::v1::Response> {
    if !services.config.registration_requires_token {
        return Err(Error::forbidden(
            "Registration tokens are not used on this server",
        ));
    }
    let valid = services.registration_tokens.is_valid(&request.body.token)?;
    Ok(check_registration_token_validity::v1::Response::new(valid))
}
