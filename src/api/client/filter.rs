//! `POST /user/{userId}/filter` and `GET /user/{userId}/filter/{filterId}`.

use axum::extract::State;
use ruma::api::client::filter::{create_filter, get_filter};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(create).ruma(get)
}

async fn create(
    State(services): State<AppState>,
    request: Ruma<create_filter::v3::Request>,
) -> Result<create_filter::v3::Response> {
    let caller = &request.identity()?.user_id;
    if *caller != request.body.user_id {
        return Err(Error::forbidden("Cannot create filters for other users"));
    }
    let id = services.filters.create(caller, &request.body.filter)?;
    Ok(create_filter::v3::Response::new(id))
}

async fn get(
    State(services): State<AppState>,
    request: Ruma<get_filter::v3::Request>,
) -> Result<get_filter::v3::Response> {
    let caller = &request.identity()?.user_id;
    if *caller != request.body.user_id {
        return Err(Error::forbidden("Cannot read filters of other users"));
    }
    let filter = services.filters.get(caller, &request.body.filter_id)?;
    Ok(get_filter::v3::Response::new(filter))
}
