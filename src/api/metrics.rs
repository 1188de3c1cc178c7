//! The metrics endpoint (`GET /metrics`, on its own listener) and the middleware that counts
//! and times every routed request.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use std::time::Instant;

use crate::api::ruma::AppState;
use crate::service::metrics::{EndpointLabels, RequestLabels};

/// The router served on `metrics.listen`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(state)
}

async fn render(State(services): State<AppState>) -> Response {
    match services.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Counts and times a request under its route's template (applied as a route layer, so only
/// routed requests are seen and the template is known).
pub async fn record(State(services): State<AppState>, request: Request, next: Next) -> Response {
    if !services.metrics.enabled {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &services.metrics;
    metrics
        .latency
        .get_or_create(&EndpointLabels {
            method: method.clone(),
            endpoint: endpoint.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            endpoint,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
