//! The client-server API, one module per spec area.

mod account;
mod account_data;
pub mod admin;
mod context;
mod devices;
mod directory;
mod discovery;
mod filter;
mod key_backup;
mod keys;
mod media;
mod membership;
pub mod message;
mod notifications;
mod presence;
mod profile;
mod push_rules;
mod pushers;
mod receipts;
mod register;
mod relations;
mod reports;
mod rooms;
mod search;
mod session;
mod spaces;
mod state;
pub mod sync;
mod thirdparty;
mod to_device;
mod typing;
mod user_directory;
mod voip;

use axum::Router;
use ruma::UInt;

use crate::api::ruma::AppState;

pub fn routes(router: Router<AppState>) -> Router<AppState> {
    let router = discovery::routes(router);
    let router = register::routes(router);
    let router = session::routes(router);
    let router = account::routes(router);
    let router = admin::routes(router);
    let router = account_data::routes(router);
    let router = devices::routes(router);
    let router = rooms::routes(router);
    let router = search::routes(router);
    let router = context::routes(router);
    let router = directory::routes(router);
    let router = filter::routes(router);
    let router = keys::routes(router);
    let router = key_backup::routes(router);
    let router = media::routes(router);
    let router = membership::routes(router);
    let router = message::routes(router);
    let router = spaces::routes(router);
    let router = state::routes(router);
    let router = notifications::routes(router);
    let router = presence::routes(router);
    let router = profile::routes(router);
    let router = thirdparty::routes(router);
    let router = user_directory::routes(router);
    let router = voip::routes(router);
    let router = push_rules::routes(router);
    let router = pushers::routes(router);
    let router = receipts::routes(router);
    let router = relations::routes(router);
    let router = reports::routes(router);
    let router = sync::routes(router);
    let router = to_device::routes(router);
    typing::routes(router)
}

/// A page size from a client's `limit`: `default` when absent, at least 1, at most `max`.
pub fn page_limit(limit: Option<UInt>, default: usize, max: usize) -> usize {
    limit
        .map_or(default, |l| usize::try_from(u64::from(l)).unwrap_or(max))
        .clamp(1, max)
}
