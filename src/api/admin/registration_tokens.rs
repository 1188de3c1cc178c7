//! Registration tokens (`m.login.registration_token`): list, show, create, change, delete.

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::admin::Admin;
use crate::api::extract::{Path, Query};
use crate::api::ruma::{AppState, JsonBody, OptionalJsonBody};
use crate::error::{Error, Result};
use crate::service::registration_tokens::RegistrationToken;
use crate::service::users::now_ms;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .route("/_synapse/admin/v1/registration_tokens", get(list))
        .route("/_synapse/admin/v1/registration_tokens/new", post(create))
        .route(
            "/_synapse/admin/v1/registration_tokens/{token}",
            get(show).put(update).delete(remove),
        )
}

fn token_json(token: &RegistrationToken) -> Value {
    json!({
        "token": token.token,
        "uses_allowed": token.uses_allowed,
        "pending": token.pending,
        "completed": token.completed,
        "expiry_time": token.expiry_time,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    valid: Option<bool>,
}

async fn list(
    State(services): State<AppState>,
    _: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>> {
    let tokens: Vec<Value> = services
        .registration_tokens
        .all()?
        .iter()
        .filter(|t| query.valid.is_none_or(|valid| t.usable() == valid))
        .map(token_json)
        .collect();
    Ok(Json(json!({ "registration_tokens": tokens })))
}

async fn show(
    State(services): State<AppState>,
    _: Admin,
    Path(token): Path<String>,
) -> Result<Json<Value>> {
    let token = services
        .registration_tokens
        .get(&token)?
        .ok_or_else(|| Error::not_found("No such registration token"))?;
    Ok(Json(token_json(&token)))
}

/// A `uses_allowed` or `expiry_time` field. Synapse answers anything but a non-negative
/// integer or `null` with `M_INVALID_PARAM` (not `M_BAD_JSON`), so the value is checked here.
#[derive(Default)]
enum Limit {
    #[default]
    Absent,
    Null,
    Set(u64),
    Invalid,
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => Limit::Null,
            value => value.as_u64().map_or(Limit::Invalid, Limit::Set),
        })
    }
}

impl Limit {
    /// `None` when absent, `Some(None)` for `null`.
    fn value(self, name: &str) -> Result<Option<Option<u64>>> {
        match self {
            Limit::Absent => Ok(None),
            Limit::Null => Ok(Some(None)),
            Limit::Set(n) => Ok(Some(Some(n))),
            Limit::Invalid => Err(Error::invalid_param(format!(
                "{name} must be a non-negative integer or null"
            ))),
        }
    }
}

fn expiry(limit: Limit) -> Result<Option<Option<u64>>> {
    let expiry = limit.value("expiry_time")?;
    if let Some(Some(time)) = expiry
        && time < now_ms()
    {
        return Err(Error::invalid_param("expiry_time must not be in the past"));
    }
    Ok(expiry)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateBody {
    token: Option<String>,
    uses_allowed: Limit,
    expiry_time: Limit,
    length: Option<u64>,
}

async fn create(
    State(services): State<AppState>,
    _: Admin,
    OptionalJsonBody(body): OptionalJsonBody<CreateBody>,
) -> Result<Json<Value>> {
    let uses_allowed = body.uses_allowed.value("uses_allowed")?.flatten();
    let expiry_time = expiry(body.expiry_time)?.flatten();
    let token = match (body.token, body.length) {
        (Some(token), _) => Some(token),
        (None, Some(length)) if !(1..=64).contains(&length) => {
            return Err(Error::invalid_param(
                "length must be an integer between 1 and 64",
            ));
        }
        (None, Some(length)) => Some(crate::service::random_string(length as usize)),
        (None, None) => None,
    };
    let token = services
        .registration_tokens
        .create(token, uses_allowed, expiry_time)?;
    Ok(Json(token_json(&token)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UpdateBody {
    uses_allowed: Limit,
    expiry_time: Limit,
}

async fn update(
    State(services): State<AppState>,
    _: Admin,
    Path(token): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<Value>> {
    let uses_allowed = body.uses_allowed.value("uses_allowed")?;
    let expiry_time = expiry(body.expiry_time)?;
    let token = services
        .registration_tokens
        .set_limits(&token, uses_allowed, expiry_time)?
        .ok_or_else(|| Error::not_found("No such registration token"))?;
    Ok(Json(token_json(&token)))
}

async fn remove(
    State(services): State<AppState>,
    _: Admin,
    Path(token): Path<String>,
) -> Result<Json<Value>> {
    if !services.registration_tokens.delete(&token)? {
        return Err(Error::not_found("No such registration token"));
    }
    Ok(Json(json!({})))
}
