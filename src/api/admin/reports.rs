//! Abuse reports: `event_reports` as in Synapse, and `room_reports` and `user_reports` in the
//! same shape. Listings are newest first unless `dir=f`.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use ruma::OwnedRoomId;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::admin::{Admin, Page, listing};
use crate::api::extract::{Path, Query};
use crate::api::ruma::AppState;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::reports::Report;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .route("/_synapse/admin/v1/event_reports", get(list_events))
        .route(
            "/_synapse/admin/v1/event_reports/{report_id}",
            get(show_event).delete(delete_event),
        )
        .route("/_synapse/admin/v1/room_reports", get(list_rooms))
        .route(
            "/_synapse/admin/v1/room_reports/{report_id}",
            get(show_room).delete(delete_room),
        )
        .route("/_synapse/admin/v1/user_reports", get(list_users))
        .route(
            "/_synapse/admin/v1/user_reports/{report_id}",
            get(show_user).delete(delete_user),
        )
}

/// The three kinds of report, told apart by what they name.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Event,
    Room,
    User,
}

fn kind_of(report: &Report) -> Kind {
    match (&report.event_id, &report.user_id) {
        (Some(_), _) => Kind::Event,
        (None, Some(_)) => Kind::User,
        (None, None) => Kind::Room,
    }
}

/// A report in the admin API's shape; `full` adds the reported event itself.
fn report_json(services: &Services, id: u64, report: &Report, full: bool) -> Result<Value> {
    let mut body = json!({
        "id": id,
        "received_ts": report.received_ms,
        "user_id": report.reporter,
        "reason": report.reason,
    });
    if let Some(room_id) = &report.room_id {
        body["room_id"] = json!(room_id);
        body["name"] = json!(services.state_field(room_id, "m.room.name", "name")?);
        body["canonical_alias"] =
            json!(services.state_field(room_id, "m.room.canonical_alias", "alias")?);
    }
    if let Some(target) = &report.user_id {
        body["target_user_id"] = json!(target);
    }
    if let Some(event_id) = &report.event_id {
        body["event_id"] = json!(event_id);
        // ruma's request type does not carry `score`, so none is stored.
        body["score"] = Value::Null;
        let event = services.rooms.pdu(event_id)?;
        body["sender"] = json!(event.as_ref().and_then(|e| e.json.get("sender").cloned()));
        if full {
            body["event_json"] = json!(event.map(|e| e.json));
        }
    }
    Ok(body)
}

#[derive(Deserialize)]
struct ListQuery {
    user_id: Option<String>,
    room_id: Option<OwnedRoomId>,
}

fn list(
    services: &Services,
    kind: Kind,
    page: Page,
    query: ListQuery,
    key: &str,
) -> Result<Json<Value>> {
    // Newest first unless asked otherwise, as Synapse lists reports.
    let forwards = page.dir.as_deref() == Some("f");
    page.backwards()?;
    let mut reports: Vec<(u64, Report)> = services
        .reports
        .all()?
        .into_iter()
        .filter(|(_, r)| {
            kind_of(r) == kind
                && query
                    .user_id
                    .as_deref()
                    .is_none_or(|u| r.reporter.as_str().contains(u))
                && query
                    .room_id
                    .as_ref()
                    .is_none_or(|room| r.room_id.as_ref() == Some(room))
        })
        .collect();
    if !forwards {
        reports.reverse();
    }
    let total = reports.len();
    let (reports, next_token) = page.slice(reports, 100)?;
    let entries = reports
        .iter()
        .map(|(id, report)| report_json(services, *id, report, false))
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(listing(
        key,
        entries,
        total,
        next_token.map(Value::from),
    )))
}

fn report_of_kind(services: &Services, kind: Kind, id: &str) -> Result<(u64, Report)> {
    let id: u64 = id
        .parse()
        .map_err(|_| Error::invalid_param("The report id must be an integer"))?;
    services
        .reports
        .get(id)?
        .filter(|report| kind_of(report) == kind)
        .map(|report| (id, report))
        .ok_or_else(|| Error::not_found("Report not found"))
}

fn show(services: &Services, kind: Kind, id: &str) -> Result<Json<Value>> {
    let (id, report) = report_of_kind(services, kind, id)?;
    Ok(Json(report_json(services, id, &report, true)?))
}

fn delete(services: &Services, kind: Kind, id: &str) -> Result<Json<Value>> {
    let (id, _) = report_of_kind(services, kind, id)?;
    services.reports.delete(id)?;
    Ok(Json(json!({})))
}

async fn list_events(
    State(services): State<AppState>,
    _: Admin,
    Query(page): Query<Page>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>> {
    list(&services, Kind::Event, page, query, "event_reports")
}

async fn show_event(
    State(services): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    show(&services, Kind::Event, &id)
}

async fn delete_event(
    State(services): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    delete(&services, Kind::Event, &id)
}

async fn list_rooms(
    State(services): State<AppState>,
    _: Admin,
    Query(page): Query<Page>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>> {
    list(&services, Kind::Room, page, query, "room_reports")
}

async fn show_room(
    State(services): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    show(&services, Kind::Room, &id)
}

async fn delete_room(
    State(services): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    delete(&services, Kind::Room, &id)
}

async fn list_users(
    State(services): State<AppState>,
    _: Admin,
    Query(page): Query<Page>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>> {
    list(&services, Kind::User, page, query, "user_reports")
}

async fn show_user(
    State(services): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    show(&services, Kind::User, &id)
}

async fn delete_user(
    State(services): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    delete(&services, Kind::User, &id)
}
