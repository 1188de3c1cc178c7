//! Devices: list, get, rename, delete (one or many, behind UIA).

use axum::extract::State;
use ruma::api::client::device::{
    delete_device, delete_devices, get_device, get_devices, update_device,
};
use ruma::{DeviceId, MilliSecondsSinceUnixEpoch, OwnedDeviceId, UInt};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::devices::Device;
use crate::service::uiaa::password_flows;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(list)
        .ruma(get)
        .ruma(update)
        .ruma(delete)
        .ruma(delete_many)
}

fn to_ruma(device_id: OwnedDeviceId, device: Device) -> ruma::api::client::device::Device {
    let mut out = ruma::api::client::device::Device::new(device_id);
    out.display_name = device.display_name;
    out.last_seen_ip = device.last_seen_ip;
    out.last_seen_ts = device
        .last_seen_ts
        .and_then(UInt::new)
        .map(MilliSecondsSinceUnixEpoch);
    out
}

async fn list(
    State(services): State<AppState>,
    request: Ruma<get_devices::v3::Request>,
) -> Result<get_devices::v3::Response> {
    let identity = request.identity()?;
    let devices = services.devices.list(&identity.user_id)?;
    Ok(get_devices::v3::Response::new(
        devices
            .into_iter()
            .map(|(id, device)| to_ruma(id, device))
            .collect(),
    ))
}

async fn get(
    State(services): State<AppState>,
    request: Ruma<get_device::v3::Request>,
) -> Result<get_device::v3::Response> {
    let identity = request.identity()?;
    let device_id = &request.body.device_id;
    let device = services
        .devices
        .get(&identity.user_id, device_id)?
        .ok_or_else(|| Error::not_found(format!("No device {device_id}")))?;
    Ok(get_device::v3::Response::new(to_ruma(
        device_id.clone(),
        device,
    )))
}

async fn update(
    State(services): State<AppState>,
    request: Ruma<update_device::v3::Request>,
) -> Result<update_device::v3::Response> {
    let identity = request.identity()?;
    services.devices.set_display_name(
        &identity.user_id,
        &request.body.device_id,
        request.body.display_name.clone(),
    )?;
    Ok(update_device::v3::Response::new())
}

async fn delete(
    State(services): State<AppState>,
    request: Ruma<delete_device::v3::Request>,
) -> Result<delete_device::v3::Response> {
    let identity = request.identity()?;
    let device_id = &request.body.device_id;
    if services
        .devices
        .get(&identity.user_id, device_id)?
        .is_none()
    {
        return Err(Error::not_found(format!("No device {device_id}")));
    }
    let flows = password_flows("delete_device", &identity.user_id);
    services
        .uiaa
        .authenticate(&services, flows, request.body.auth.as_ref())
        .await?;
    services.delete_devices(&identity.user_id, &[device_id])?;
    Ok(delete_device::v3::Response::new())
}

async fn delete_many(
    State(services): State<AppState>,
    request: Ruma<delete_devices::v3::Request>,
) -> Result<delete_devices::v3::Response> {
    let identity = request.identity()?;
    let flows = password_flows("delete_devices", &identity.user_id);
    services
        .uiaa
        .authenticate(&services, flows, request.body.auth.as_ref())
        .await?;
    let device_ids: Vec<&DeviceId> = request.body.devices.iter().map(|id| id.as_ref()).collect();
    services.delete_devices(&identity.user_id, &device_ids)?;
    Ok(delete_devices::v3::Response::new())
}
