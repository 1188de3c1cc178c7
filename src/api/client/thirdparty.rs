//! `GET /thirdparty/protocols`: the protocols bridges (application services) offer. Myelin has
//! no application services yet, so there are none.

use axum::extract::State;
use ruma::api::client::thirdparty::get_protocols;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::Result;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(protocols)
}

async fn protocols(
    State(_services): State<AppState>,
    request: Ruma<get_protocols::v3::Request>,
) -> Result<get_protocols::v3::Response> {
    request.identity()?;
    Ok(get_protocols::v3::Response::new(Default::default()))
}
