//! `PUT /sendToDevice/{eventType}/{txnId}`.

use axum::extract::State;
use ruma::api::client::to_device::send_event_to_device;
use ruma::to_device::DeviceIdOrAllDevices;
use serde_json::Value;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.ruma(send)
}

async fn send(
    State(services): State<AppState>,
    request: Ruma<send_event_to_device::v3::Request>,
) -> Result<send_event_to_device::v3::Response> {
    let identity = request.identity()?;
    let body = &request.body;
    let mut targets = Vec::new();
    for (user, devices) in &body.messages {
        if !services.users.is_local(user) {
            // Nothing can carry it to another server until federation exists.
            tracing::warn!(%user, "to-device message for a remote user dropped: no federation yet");
            continue;
        }
        for (device, content) in devices {
            let content: Value = serde_json::from_str(content.json().get())
                .map_err(|e| Error::bad_json(e.to_string()))?;
            match device {
                DeviceIdOrAllDevices::DeviceId(device) => {
                    targets.push((user.as_ref(), device.clone(), content))
                }
                DeviceIdOrAllDevices::AllDevices => {
                    for (device, _) in services.devices.list(user)? {
                        targets.push((user.as_ref(), device, content.clone()));
                    }
                }
            }
        }
    }
    services.to_device.send(
        &identity.user_id,
        &identity.device_id,
        body.txn_id.as_str(),
        &body.event_type.to_string(),
        targets,
    )?;
    Ok(send_event_to_device::v3::Response::new())
}
