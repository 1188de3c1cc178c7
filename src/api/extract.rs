//! axum's `Path` and `Query`, answering what they cannot decode with the Matrix error the spec
//! asks for (400 `M_INVALID_PARAM`) instead of axum's plain-text rejection.

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::error::{Error, Result};

/// Path parameters; an undecodable segment (invalid UTF-8, a non-number) is `M_INVALID_PARAM`.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| Error::invalid_param(rejection.body_text()))
    }
}

/// Query parameters; a value of the wrong type (`limit=-1`, `from=abc`) is `M_INVALID_PARAM`.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Query)
            .map_err(|e| Error::invalid_param(format!("Invalid query parameter: {e}")))
    }
}
