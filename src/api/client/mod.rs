//! The client-server API, one module per spec area.

mod account;
mod devices;
mod discovery;
mod register;
mod session;

use axum::Router;

use crate::api::ruma::AppState;

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    let router = discovery::routes(router);
    let router = register::routes(router);
    let router = session::routes(router);
    let router = account::routes(router);
    devices::routes(router)
}
