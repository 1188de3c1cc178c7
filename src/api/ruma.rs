//! The bridge between axum and ruma: one extractor turns an HTTP request into a ruma request
//! type plus the authenticated caller, and one helper registers a handler at every path and
//! method its ruma metadata lists. No handler parses bodies or checks tokens itself.

use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts as _, RawPathParams, Request, State,
};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Router, body::Body};
use http::request::Parts;
use ruma::api::auth_scheme::{
    AccessToken, AccessTokenOptional, AppserviceToken, AppserviceTokenOptional, NoAccessToken,
    NoAuthentication,
};
use ruma::api::error::{DeserializationError, FromHttpRequestError};
use ruma::api::path_builder::PathBuilder as _;
use ruma::api::{
    IncomingRequest, IncomingRequestExt as _, OutgoingResponse, OutgoingResponseExt as _,
};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::error::{Error, Result, json_response};
use crate::service::Services;
use crate::service::devices::Identity;

pub type AppState = Arc<Services>;

/// How an endpoint's ruma authentication scheme maps onto access-token checks.
pub enum AuthMode {
    /// No token needed; one that is sent is ignored.
    None,
    /// A token is checked if present.
    Optional,
    /// A valid token is required.
    Required,
}

pub trait Authentication {
    const MODE: AuthMode;
}

impl Authentication for NoAuthentication {
    const MODE: AuthMode = AuthMode::None;
}
impl Authentication for NoAccessToken {
    const MODE: AuthMode = AuthMode::None;
}
impl Authentication for AccessToken {
    const MODE: AuthMode = AuthMode::Required;
}
impl Authentication for AccessTokenOptional {
    const MODE: AuthMode = AuthMode::Optional;
}
// Application services come later; until then their tokens are ordinary access tokens and
// the optional form (login, register) needs none.
impl Authentication for AppserviceToken {
    const MODE: AuthMode = AuthMode::Required;
}
impl Authentication for AppserviceTokenOptional {
    const MODE: AuthMode = AuthMode::None;
}

/// A parsed ruma request and who sent it.
pub struct Ruma<R> {
    pub body: R,
    pub identity: Option<Identity>,
    pub client_ip: IpAddr,
}

impl<R> Ruma<R> {
    /// The authenticated caller; endpoints that require a token always have one.
    pub fn identity(&self) -> Result<&Identity> {
        self.identity.as_ref().ok_or_else(Error::missing_token)
    }
}

impl<R> FromRequest<AppState> for Ruma<R>
where
    R: IncomingRequest + Send,
    R::Authentication: Authentication,
{
    type Rejection = Error;

    async fn from_request(request: Request, services: &AppState) -> Result<Self> {
        let (mut parts, body) = request.into_parts();
        let client_ip = client_ip(&parts);
        let path_args: Vec<String> =
            match RawPathParams::from_request_parts(&mut parts, services).await {
                Ok(params) => params.iter().map(|(_, value)| value.to_owned()).collect(),
                Err(_) => Vec::new(),
            };
        let identity = match <R::Authentication as Authentication>::MODE {
            AuthMode::None => None,
            AuthMode::Optional => match access_token(&parts)? {
                Some(token) => Some(services.devices.authenticate(&token)?),
                None => None,
            },
            AuthMode::Required => {
                let token = access_token(&parts)?.ok_or_else(Error::missing_token)?;
                Some(services.devices.authenticate(&token)?)
            }
        };
        if let Some(identity) = &identity {
            tracing::Span::current().record("user", identity.user_id.as_str());
            services.devices.touch(identity, client_ip);
        }

        let mut bytes = read_body(&parts, body, services.config.max_request_size).await?;
        // Clients and scripts send `POST /join/{room}` and the like with no body at all; like
        // Synapse, an empty body counts as `{}` (endpoints that need fields still say which).
        if bytes.is_empty() && matches!(parts.method, http::Method::POST | http::Method::PUT) {
            bytes = bytes::Bytes::from_static(b"{}");
        }
        if !bytes.is_empty() {
            serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
                .map_err(|e| Error::not_json(format!("Body is not valid JSON: {e}")))?;
        }
        let http_request = http::Request::from_parts(parts, bytes.as_ref());
        let mut args: Vec<&str> = path_args.iter().map(String::as_str).collect();
        // `/state/{eventType}` and `/state/{eventType}/` name the empty state key: the route
        // without the last parameter stands for it.
        let expected = R::PATH_BUILDER
            .all_paths()
            .next()
            .map_or(0, |path| path.matches('{').count());
        if args.len() + 1 == expected {
            args.push("");
        }
        // ruma's parsers are not all panic-free on hostile input (a login body without `type`
        // indexes a missing key), so a panic while parsing is answered as the bad JSON it is.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            R::try_from_http_request(http_request, &args)
        }))
        .map_err(|_| Error::bad_json("Invalid request body"))?;
        let body = parsed.map_err(request_error)?;
        Ok(Ruma {
            body,
            identity,
            client_ip,
        })
    }
}

/// The authenticated caller, for handlers that take the raw request (streamed media) instead
/// of a ruma type.
pub struct Authenticated(pub Identity);

impl axum::extract::FromRequestParts<AppState> for Authenticated {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, services: &AppState) -> Result<Self> {
        let token = access_token(parts)?.ok_or_else(Error::missing_token)?;
        let identity = services.devices.authenticate(&token)?;
        tracing::Span::current().record("user", identity.user_id.as_str());
        services.devices.touch(&identity, client_ip(parts));
        Ok(Authenticated(identity))
    }
}

/// The access token from `Authorization: Bearer …` or, as older clients send it, the
/// `access_token` query parameter.
fn access_token(parts: &Parts) -> Result<Option<String>> {
    if let Some(header) = parts.headers.get(http::header::AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(Error::missing_token)?;
        return Ok(Some(token.to_owned()));
    }
    let query = parts.uri.query().unwrap_or_default();
    Ok(form_urlencoded_value(query, "access_token"))
}

fn form_urlencoded_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Reads the whole body, refusing more than `limit` bytes (also when `Content-Length` lies).
async fn read_body(parts: &Parts, body: Body, limit: u64) -> Result<bytes::Bytes> {
    let too_large = || Error::too_large(format!("Request body is larger than {limit} bytes"));
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let length_limit = std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if length_limit {
            too_large()
        } else {
            Error::bad_json(format!("Could not read the request body: {err}"))
        }
    })
}

/// Maps ruma's parse errors onto the spec's: bad syntax is `M_NOT_JSON`, a wrong shape
/// `M_BAD_JSON`, a bad query or path parameter `M_INVALID_PARAM`.
fn request_error(err: FromHttpRequestError) -> Error {
    match err {
        FromHttpRequestError::Deserialization(DeserializationError::Json(e)) => {
            match e.classify() {
                serde_json::error::Category::Data => {
                    Error::bad_json(format!("Invalid request body: {e}"))
                }
                _ => Error::not_json(format!("Body is not valid JSON: {e}")),
            }
        }
        FromHttpRequestError::Deserialization(e) => {
            Error::invalid_param(format!("Invalid request: {e}"))
        }
        FromHttpRequestError::MethodMismatch { expected, received } => Error::unrecognized(
            http::StatusCode::METHOD_NOT_ALLOWED,
            format!("Expected {expected}, got {received}"),
        ),
        other => Error::bad_json(format!("Invalid request: {other}")),
    }
}

fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A ruma response as an axum response.
pub struct RumaResponse<T>(pub T);

impl<T: OutgoingResponse> IntoResponse for RumaResponse<T> {
    fn into_response(self) -> Response {
        match self.0.try_into_http_response::<Vec<u8>>() {
            Ok(response) => json_response(response),
            Err(err) => {
                Error::internal(format!("could not serialize response: {err}")).into_response()
            }
        }
    }
}

/// Registers `handler` for ruma request type `R` at every path (r0, v3, unstable) and the
/// method its metadata lists.
pub trait RumaRouter {
    fn ruma<R, H, F>(self, handler: H) -> Self
    where
        R: IncomingRequest + Send + 'static,
        R::Authentication: Authentication,
        R::OutgoingResponse: Send,
        H: Fn(State<AppState>, Ruma<R>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<R::OutgoingResponse>> + Send + 'static;
}

impl RumaRouter for Router<AppState> {
    fn ruma<R, H, F>(mut self, handler: H) -> Self
    where
        R: IncomingRequest + Send + 'static,
        R::Authentication: Authentication,
        R::OutgoingResponse: Send,
        H: Fn(State<AppState>, Ruma<R>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<R::OutgoingResponse>> + Send + 'static,
    {
        // ruma only uses the standard methods, which all have a filter.
        let filter =
            MethodFilter::try_from(R::METHOD).expect("ruma endpoints use standard methods");
        let wrapped = move |state: State<AppState>, request: Ruma<R>| {
            let response = handler(state, request);
            async move { response.await.map(RumaResponse) }
        };
        for path in R::PATH_BUILDER.all_paths() {
            self = self.route(path, on(filter, wrapped.clone()));
            // An empty state key leaves the last segment empty (`/state/m.room.name/`), which
            // no path parameter matches: serve those forms too.
            if let Some(prefix) = path.strip_suffix("/{state_key}") {
                self = self.route(prefix, on(filter, wrapped.clone()));
                self = self.route(&format!("{prefix}/"), on(filter, wrapped.clone()));
            }
        }
        self
    }
}

/// A JSON body for endpoints ruma has no type for (the Synapse admin API), with the same size
/// limit and the same `M_NOT_JSON` / `M_BAD_JSON` answers as ruma endpoints.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, services: &AppState) -> Result<Self> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(&parts, body, services.config.max_request_size).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`], but an empty body stands for the default (Synapse accepts an empty body
/// where every field is optional).
pub struct OptionalJsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned + Default> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, services: &AppState) -> Result<Self> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(&parts, body, services.config.max_request_size).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Error::bad_json(format!("Invalid request body: {e}")),
        _ => Error::not_json(format!("Body is not valid JSON: {e}")),
    })
}
