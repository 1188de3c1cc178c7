//! `POST /user_directory/search`.

use axum::extract::State;
use ruma::OwnedMxcUri;
use ruma::api::client::user_directory::search_users;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::Result;

/// Most results one search returns, whatever the client asks.
const MAX_LIMIT: usize = 50;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(search)
}

async fn search(
    State(services): State<AppState>,
    request: Ruma<search_users::v3::Request>,
) -> Result<search_users::v3::Response> {
    let caller = &request.identity()?.user_id;
    let limit = usize::try_from(u64::from(request.body.limit))
        .unwrap_or(MAX_LIMIT)
        .min(MAX_LIMIT);
    let (found, limited) = services.search_users(caller, &request.body.search_term, limit)?;
    let results = found
        .into_iter()
        .map(|user| {
            let mut entry = search_users::v3::User::new(user.user_id);
            entry.display_name = user.displayname;
            entry.avatar_url = user.avatar_url.map(OwnedMxcUri::from);
            entry
        })
        .collect();
    Ok(search_users::v3::Response::new(results, limited))
}
