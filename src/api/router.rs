//! The one place the HTTP surface is assembled: every route, the fallbacks, and the middleware
//! (request log and span, CORS, panic catching).

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument as _;

use crate::api::ruma::AppState;
use crate::api::{admin, client};
use crate::error::Error;

pub fn build(state: AppState) -> Router {
    let routes = client::routes(Router::new());
    let routes = admin::routes(routes);
    routes
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::api::metrics::record,
        ))
        .fallback(|| async { Error::unrecognized(StatusCode::NOT_FOUND, "Unrecognized request") })
        .method_not_allowed_fallback(|| async {
            Error::unrecognized(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed for this endpoint",
            )
        })
        .with_state(state)
        .layer(middleware::from_fn(cors))
        .layer(CatchPanicLayer::custom(|_| {
            Error::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn(log_request))
}

/// One span per request (request id, method, path, and the user once known) and one log line
/// when it ends. The path is logged without its query, which may carry an access token.
async fn log_request(request: Request, next: Next) -> Response {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", id, %method, %path, user = tracing::field::Empty);
    let started = Instant::now();
    async move {
        let mut response = next.run(request).await;
        let status = response.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            status,
            latency_ms = format_args!("{latency_ms:.2}"),
            "request"
        );
        if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
    .instrument(span)
    .await
}

/// The spec's web-browser (CORS) headers on every response, and an empty 204 for `OPTIONS`,
/// so Element Web on another origin can call the API.
async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("X-Requested-With, Content-Type, Authorization"),
    );
    response
}
