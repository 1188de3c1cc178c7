//! `GET /pushers` and `POST /pushers/set`.

use axum::extract::State;
use ruma::api::client::push::{get_pushers, set_pusher};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::Result;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(list).ruma(set)
}

async fn list(
    State(services): State<AppState>,
    request: Ruma<get_pushers::v3::Request>,
) -> Result<get_pushers::v3::Response> {
    let user = &request.identity()?.user_id;
    Ok(get_pushers::v3::Response::new(services.pushers.list(user)?))
}

async fn set(
    State(services): State<AppState>,
    request: Ruma<set_pusher::v3::Request>,
) -> Result<set_pusher::v3::Response> {
    let user = request.identity()?.user_id.clone();
    match request.body.action {
        set_pusher::v3::PusherAction::Post(data) => {
            services.pushers.set(&user, data.pusher, data.append)?
        }
        set_pusher::v3::PusherAction::Delete(ids) => services.pushers.delete(&user, &ids)?,
        _ => return Err(crate::error::Error::bad_json("Unknown pusher action")),
    }
    Ok(set_pusher::v3::Response::new())
}
