//! HTTP: the client-server API, the admin API, and the router that joins them.

pub mod admin;
pub mod client;
pub mod extract;
pub mod metrics;
pub mod router;
pub mod ruma;
