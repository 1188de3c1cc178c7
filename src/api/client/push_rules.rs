//! Reading push rules: `GET /pushrules/` and `GET /pushrules/global/`. Every client's sync
//! loop starts here. Users get the spec's default rules; editing them (the rule CRUD
//! endpoints) is not implemented yet and answers 404 `M_UNRECOGNIZED`.

use axum::extract::State;
use ruma::api::client::push::{get_pushrules_all, get_pushrules_global_scope};
use ruma::push::Ruleset;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::Result;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(all).ruma(global)
}

async fn all(
    State(_services): State<AppState>,
    request: Ruma<get_pushrules_all::v3::Request>,
) -> Result<get_pushrules_all::v3::Response> {
    let user = &request.identity()?.user_id;
    Ok(get_pushrules_all::v3::Response::new(
        Ruleset::server_default(user),
    ))
}

async fn global(
    State(_services): State<AppState>,
    request: Ruma<get_pushrules_global_scope::v3::Request>,
) -> Result<get_pushrules_global_scope::v3::Response> {
    let user = &request.identity()?.user_id;
    Ok(get_pushrules_global_scope::v3::Response::new(
        Ruleset::server_default(user),
    ))
}
