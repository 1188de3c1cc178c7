//! End-to-end encryption keys: `/keys/upload`, `/keys/query`, `/keys/claim`, `/keys/changes`,
//! `/keys/device_signing/upload` and `/keys/signatures/upload`.

use axum::extract::State;
use ruma::api::client::keys::{
    claim_keys, get_key_changes, get_keys, upload_keys, upload_signatures, upload_signing_keys,
};
use ruma::serde::Raw;
use ruma::{OneTimeKeyAlgorithm, OwnedDeviceId, OwnedOneTimeKeyId, UInt, UserId};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::keys::{MASTER, SELF_SIGNING, USER_SIGNING, merge_signatures};
use crate::service::uiaa::password_flows;

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(upload)
        .ruma(query)
        .ruma(claim)
        .ruma(changes)
        .ruma(upload_signing)
        .ruma(signatures)
}

fn to_value<T>(raw: &Raw<T>) -> Result<Value> {
    serde_json::from_str(raw.json().get()).map_err(|e| Error::bad_json(format!("Invalid key: {e}")))
}

fn to_raw<T>(value: &Value) -> Result<Raw<T>> {
    serde_json::value::to_raw_value(value)
        .map(Raw::from_json)
        .map_err(Error::internal)
}

async fn upload(
    State(services): State<AppState>,
    request: Ruma<upload_keys::v3::Request>,
) -> Result<upload_keys::v3::Response> {
    let identity = request.identity()?;
    let body = &request.body;
    let device_keys = body.device_keys.as_ref().map(to_value).transpose()?;
    let list = |keys: &BTreeMap<OwnedOneTimeKeyId, Raw<_>>| -> Result<Vec<(String, Value)>> {
        keys.iter()
            .map(|(id, key)| Ok((id.to_string(), to_value(key)?)))
            .collect()
    };
    let changed = services.keys.upload(
        &identity.user_id,
        &identity.device_id,
        device_keys,
        list(&body.one_time_keys)?,
        list(&body.fallback_keys)?,
    )?;
    if changed {
        services.device_keys_changed(&identity.user_id)?;
    }
    Ok(upload_keys::v3::Response::new(one_time_key_counts(
        &services,
        &identity.user_id,
        &identity.device_id,
    )?))
}

pub fn one_time_key_counts(
    services: &Services,
    user: &UserId,
    device: &ruma::DeviceId,
) -> Result<BTreeMap<OneTimeKeyAlgorithm, UInt>> {
    Ok(services
        .keys
        .one_time_key_counts(user, device)?
        .into_iter()
        .map(|(algorithm, count)| {
            (
                OneTimeKeyAlgorithm::from(algorithm.as_str()),
                UInt::new(count).unwrap_or_default(),
            )
        })
        .collect())
}

async fn query(
    State(services): State<AppState>,
    request: Ruma<get_keys::v3::Request>,
) -> Result<get_keys::v3::Response> {
    let caller = &request.identity()?.user_id;
    let mut response = get_keys::v3::Response::new();
    for (user, devices) in &request.body.device_keys {
        if user.server_name() != services.server_name {
            response.failures.insert(
                user.server_name().to_string(),
                json!({"errcode": "M_UNRECOGNIZED", "error": "Federation is not available yet"}),
            );
            continue;
        }
        let mut found = BTreeMap::new();
        for (device, mut keys) in services.keys.all_device_keys(user)? {
            let device = OwnedDeviceId::from(device);
            if !devices.is_empty() && !devices.contains(&device) {
                continue;
            }
            if let Some(name) = services
                .devices
                .get(user, &device)?
                .and_then(|d| d.display_name)
            {
                keys["unsigned"] = json!({"device_display_name": name});
            }
            found.insert(device, to_raw(&keys)?);
        }
        response.device_keys.insert(user.clone(), found);
        if let Some(mut master) = services.keys.cross_signing_key(user, MASTER)? {
            // The caller's own user-signing signatures on this master key are theirs to see.
            if let Some(private) = services.keys.private_signatures(caller, user)? {
                merge_signatures(&mut master, &private);
            }
            response.master_keys.insert(user.clone(), to_raw(&master)?);
        }
        if let Some(key) = services.keys.cross_signing_key(user, SELF_SIGNING)? {
            response
                .self_signing_keys
                .insert(user.clone(), to_raw(&key)?);
        }
        if user == caller
            && let Some(key) = services.keys.cross_signing_key(user, USER_SIGNING)?
        {
            response
                .user_signing_keys
                .insert(user.clone(), to_raw(&key)?);
        }
    }
    Ok(response)
}

async fn claim(
    State(services): State<AppState>,
    request: Ruma<claim_keys::v3::Request>,
) -> Result<claim_keys::v3::Response> {
    request.identity()?;
    let mut claimed = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for (user, devices) in &request.body.one_time_keys {
        if user.server_name() != services.server_name {
            failures.insert(
                user.server_name().to_string(),
                json!({"errcode": "M_UNRECOGNIZED", "error": "Federation is not available yet"}),
            );
            continue;
        }
        let mut by_device = BTreeMap::new();
        for (device, algorithm) in devices {
            if let Some((key_id, key)) = services.keys.claim(user, device, algorithm.as_str())? {
                let key_id = OwnedOneTimeKeyId::try_from(key_id).map_err(Error::internal)?;
                by_device.insert(device.clone(), BTreeMap::from([(key_id, to_raw(&key)?)]));
            }
        }
        if !by_device.is_empty() {
            claimed.insert(user.clone(), by_device);
        }
    }
    let mut response = claim_keys::v3::Response::new(claimed);
    response.failures = failures;
    Ok(response)
}

async fn changes(
    State(services): State<AppState>,
    request: Ruma<get_key_changes::v3::Request>,
) -> Result<get_key_changes::v3::Response> {
    let user = &request.identity()?.user_id;
    let position = |token: &str| {
        crate::api::client::sync::parse_since(token)
            .map(|(stream, _, _)| stream)
            .map_err(|_| Error::invalid_param(format!("Invalid token `{token}`")))
    };
    let from = position(&request.body.from)?;
    let to = position(&request.body.to)?;
    let (changed, left) = services.device_list_changes(user, from, to)?;
    Ok(get_key_changes::v3::Response::new(
        changed.into_iter().collect(),
        left.into_iter().collect(),
    ))
}

async fn upload_signing(
    State(services): State<AppState>,
    request: Ruma<upload_signing_keys::v3::Request>,
) -> Result<upload_signing_keys::v3::Response> {
    let identity = request.identity()?;
    let user = &identity.user_id;
    let body = &request.body;
    // A first upload needs no re-authentication (the account has no cross-signing identity to
    // protect yet); replacing keys does.
    if services.keys.cross_signing_key(user, MASTER)?.is_some() {
        let flows = password_flows("keys/device_signing/upload", user);
        services
            .uiaa
            .authenticate(&services, flows, body.auth.as_ref())
            .await?;
    }
    services.keys.upload_cross_signing(
        user,
        body.master_key.as_ref().map(to_value).transpose()?,
        body.self_signing_key.as_ref().map(to_value).transpose()?,
        body.user_signing_key.as_ref().map(to_value).transpose()?,
    )?;
    services.device_keys_changed(user)?;
    Ok(upload_signing_keys::v3::Response::new())
}

async fn signatures(
    State(services): State<AppState>,
    request: Ruma<upload_signatures::v3::Request>,
) -> Result<upload_signatures::v3::Response> {
    let signer = &request.identity()?.user_id;
    let mut failures: BTreeMap<
        ruma::OwnedUserId,
        BTreeMap<String, upload_signatures::v3::Failure>,
    > = BTreeMap::new();
    for (target, keys) in &request.body.signed_keys {
        let mut changed = false;
        for (key_id, object) in keys.iter() {
            let outcome = serde_json::from_str::<Value>(object.get())
                .map_err(|e| Error::bad_json(e.to_string()))
                .and_then(|signed| {
                    services
                        .keys
                        .add_signatures(signer, target, key_id, &signed)
                });
            match outcome {
                Ok(()) => changed = true,
                Err(err) => {
                    let message = match &err {
                        Error::Matrix { message, .. } => message.clone(),
                        other => other.to_string(),
                    };
                    let failure = serde_json::from_value(
                        json!({"errcode": "M_INVALID_SIGNATURE", "error": message}),
                    )
                    .map_err(Error::internal)?;
                    failures
                        .entry(target.clone())
                        .or_default()
                        .insert(key_id.to_owned(), failure);
                }
            }
        }
        // Signing one's own keys changes what others see of them; signing someone else's
        // master key changes only what the signer sees.
        if changed {
            services.device_keys_changed(if signer == target { target } else { signer })?;
        }
    }
    let mut response = upload_signatures::v3::Response::new();
    response.failures = failures;
    Ok(response)
}
