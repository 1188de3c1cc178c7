//! Pushers: where a user's phone (through its push gateway, e.g. Sygnal) is told about events
//! that notify them (spec: push-gateway-api.md, `POST /_matrix/push/v1/notify`).
//!
//! Delivery happens in the background after the event is stored: a failed request is retried
//! with exponential back-off, and a gateway that rejects a pushkey gets that pusher removed.
//! Gateways are reached through the outbound guard, so by default only public addresses.

use ruma::api::client::push::{Pusher, PusherIds, PusherKind};
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::PushConfig;
use crate::error::{Error, Result};
use crate::service::outbound;
use crate::storage::{Cf, Db, Key, KeyReader};

/// Attempts per notification and gateway before giving up.
const ATTEMPTS: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// What a gateway is told about one event (the spec's `notification` object, less `devices`).
pub struct Notification {
    pub user: OwnedUserId,
    pub event: Value,
    pub highlight: bool,
    pub unread: u64,
}

#[derive(Clone)]
pub struct Pushers {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    client: reqwest::Client,
    guard: outbound::Guard,
    /// Users with at least one pusher, so the send path asks the database only for them.
    owners: Mutex<HashSet<OwnedUserId>>,
}

impl Inner {
    /// Re-reads whether `user` still has pushers.
    fn refresh_owner(&self, user: &UserId) {
        let any = self
            .db
            .table(Cf::Pushers)
            .scan_prefix(Key::new().str(user.as_str()))
            .is_ok_and(|found| !found.is_empty());
        if let Ok(mut owners) = self.owners.lock() {
            if any {
                owners.insert(user.to_owned());
            } else {
                owners.remove(user);
            }
        }
    }
}

fn key(user: &UserId, app_id: &str, pushkey: &str) -> Key {
    Key::new()
        .str(user.as_str())
        .str(app_id)
        .bytes(pushkey.as_bytes())
}

impl Pushers {
    pub fn new(db: Db, config: &PushConfig) -> Result<Pushers> {
        let (client, guard) = outbound::client(
            &config.allowed_networks,
            Duration::from_millis(config.timeout_ms),
            "push",
        )?;
        let mut owners = HashSet::new();
        for (key, _) in db.table(Cf::Pushers).scan_prefix([])? {
            if let Some(user) = KeyReader::new(&key).str()
                && let Ok(user) = OwnedUserId::try_from(user)
            {
                owners.insert(user);
            }
        }
        Ok(Pushers {
            inner: Arc::new(Inner {
                db,
                client,
                guard,
                owners: Mutex::new(owners),
            }),
        })
    }

    /// Whether `user` has any pusher (no database read).
    pub fn has_any(&self, user: &UserId) -> bool {
        self.inner
            .owners
            .lock()
            .is_ok_and(|owners| owners.contains(user))
    }

    pub fn list(&self, user: &UserId) -> Result<Vec<Pusher>> {
        Ok(self
            .inner
            .db
            .table(Cf::Pushers)
            .scan_prefix_json::<Pusher>(Key::new().str(user.as_str()))?
            .into_iter()
            .map(|(_, pusher)| pusher)
            .collect())
    }

    /// Adds or replaces a pusher. Without `append`, the same app id and pushkey registered by
    /// other users are removed (the device changed hands).
    pub fn set(&self, user: &UserId, pusher: Pusher, append: bool) -> Result<()> {
        if let PusherKind::Http(http) = &pusher.kind {
            let url = reqwest::Url::parse(&http.url)
                .map_err(|e| Error::invalid_param(format!("Invalid pusher url: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Error::invalid_param("A pusher url must be http or https"));
            }
        }
        let ids = &pusher.ids;
        let table = self.inner.db.table(Cf::Pushers);
        let mut batch = self.inner.db.batch();
        let mut displaced = Vec::new();
        if !append {
            for (stored_key, other) in table.scan_prefix_json::<Pusher>([])? {
                if other.ids.app_id == ids.app_id
                    && other.ids.pushkey == ids.pushkey
                    && !stored_key.starts_with(Key::new().str(user.as_str()).as_ref())
                {
                    batch.delete(Cf::Pushers, &stored_key);
                    if let Some(owner) = KeyReader::new(&stored_key).str()
                        && let Ok(owner) = OwnedUserId::try_from(owner)
                    {
                        displaced.push(owner);
                    }
                }
            }
        }
        batch.put_json(Cf::Pushers, key(user, &ids.app_id, &ids.pushkey), &pusher)?;
        batch.commit()?;
        self.inner.refresh_owner(user);
        // Those who lost this pushkey may have none left.
        for owner in displaced {
            self.inner.refresh_owner(&owner);
        }
        Ok(())
    }

    pub fn delete(&self, user: &UserId, ids: &PusherIds) -> Result<()> {
        self.inner
            .db
            .table(Cf::Pushers)
            .delete(key(user, &ids.app_id, &ids.pushkey))?;
        self.inner.refresh_owner(user);
        Ok(())
    }

    /// Sends a notification to each of the user's HTTP pushers, in the background.
    pub fn dispatch(&self, notification: Notification) {
        let pushers = match self.list(&notification.user) {
            Ok(pushers) => pushers,
            Err(err) => {
                tracing::warn!(%err, user = %notification.user, "could not read pushers");
                return;
            }
        };
        let notification = Arc::new(notification);
        for pusher in pushers {
            let PusherKind::Http(http) = &pusher.kind else {
                continue;
            };
            let body = payload(&notification, &pusher, http.format.is_some());
            let url = http.url.clone();
            let inner = Arc::clone(&self.inner);
            let (user, ids) = (notification.user.clone(), pusher.ids.clone());
            tokio::spawn(async move { inner.deliver(&user, &ids, &url, &body).await });
        }
    }
}

impl Inner {
    async fn deliver(&self, user: &UserId, ids: &PusherIds, url: &str, body: &Value) {
        let mut wait = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            match self.post(url, body).await {
                Ok(rejected) => {
                    if rejected.contains(&ids.pushkey) {
                        tracing::info!(%user, app = %ids.app_id, "push gateway rejected the pushkey; pusher removed");
                        let _ =
                            self.db
                                .table(Cf::Pushers)
                                .delete(key(user, &ids.app_id, &ids.pushkey));
                        self.refresh_owner(user);
                    }
                    return;
                }
                Err(Failure::Permanent(reason)) => {
                    tracing::warn!(%user, app = %ids.app_id, %reason, "push not delivered");
                    return;
                }
                Err(Failure::Retry(reason)) => {
                    tracing::debug!(%user, app = %ids.app_id, attempt, %reason, "push failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        tracing::warn!(%user, app = %ids.app_id, "push gateway unreachable; gave up");
    }

    /// Posts one notification. The gateway's `rejected` pushkeys on success.
    async fn post(&self, url: &str, body: &Value) -> std::result::Result<Vec<String>, Failure> {
        let url = reqwest::Url::parse(url).map_err(|e| Failure::Permanent(e.to_string()))?;
        self.guard
            .check_url(&url)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        let response = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|err| match outbound::blocked_cause(&err) {
                Some(blocked) => Failure::Permanent(blocked),
                None => Failure::Retry(err.to_string()),
            })?;
        let status = response.status();
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Retry(format!("gateway answered {status}")));
        }
        if !status.is_success() {
            return Err(Failure::Permanent(format!("gateway answered {status}")));
        }
        let answer: Value = response.json().await.unwrap_or_default();
        Ok(answer["rejected"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}

enum Failure {
    Retry(String),
    Permanent(String),
}

/// The spec's notification body for one pusher. `event_id_only` leaves out the content.
fn payload(notification: &Notification, pusher: &Pusher, event_id_only: bool) -> Value {
    let event = &notification.event;
    let mut data = match &pusher.kind {
        PusherKind::Http(http) => serde_json::to_value(http).unwrap_or_default(),
        _ => json!({}),
    };
    if let Some(object) = data.as_object_mut() {
        object.remove("url");
    }
    let mut body = json!({
        "event_id": event["event_id"],
        "room_id": event["room_id"],
        "prio": if notification.highlight { "high" } else { "low" },
        "counts": {"unread": notification.unread},
        "devices": [{
            "app_id": pusher.ids.app_id,
            "pushkey": pusher.ids.pushkey,
            "data": data,
            "tweaks": if notification.highlight { json!({"highlight": true}) } else { json!({}) },
        }],
    });
    if !event_id_only {
        body["type"] = event["type"].clone();
        body["sender"] = event["sender"].clone();
        body["content"] = event["content"].clone();
    }
    json!({ "notification": body })
}
