//! The admin API, on the Synapse admin API's paths and shapes so existing admin tools work.

mod register;

use axum::Router;

use crate::api::ruma::AppState;

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    register::routes(router)
}
