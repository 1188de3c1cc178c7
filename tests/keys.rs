//! End-to-end encryption keys over HTTP: device keys and their signature checks, one-time and
//! fallback keys (one claimer per key, also under concurrency), cross-signing, signature
//! uploads, device-list changes in `/sync` and `/keys/changes`, and key backup.

mod common;

use base64::Engine as _;
use common::{TestServer, assert_error};
use ruma::signatures::{Ed25519KeyPair, sign_json};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// An ed25519 key a test signs with, named `ed25519:<name>`.
struct SigningKey {
    pair: Ed25519KeyPair,
    name: String,
}

impl SigningKey {
    fn new(name: &str) -> SigningKey {
        let document = Ed25519KeyPair::generate();
        SigningKey {
            pair: Ed25519KeyPair::from_der(&document, name.to_owned()).expect("key"),
            name: name.to_owned(),
        }
    }

    fn id(&self) -> String {
        format!("ed25519:{}", self.name)
    }

    fn public(&self) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.pair.public_key())
    }

    /// `object` with this key's signature added under `signer`.
    fn sign(&self, signer: &str, object: Value) -> Value {
        let mut canonical: ruma::CanonicalJsonObject =
            serde_json::from_value(object).expect("canonical");
        sign_json(signer, &self.pair, &mut canonical).expect("signed");
        serde_json::to_value(canonical).expect("json")
    }
}

fn device_keys(user: &str, device: &str, key: &SigningKey) -> Value {
    key.sign(
        user,
        json!({
            "user_id": user,
            "device_id": device,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                format!("curve25519:{device}"): "Y3VydmUyNTUxOWtleWZvcnRlc3RpbmdwdXJwb3Nlcw",
                format!("ed25519:{device}"): key.public(),
            },
        }),
    )
}

fn cross_signing_key(user: &str, usage: &str, key: &SigningKey) -> Value {
    json!({"user_id": user, "usage": [usage], "keys": {key.id(): key.public()}})
}

#[tokio::test]
async fn device_keys_are_checked_stored_and_queried() {
    let server = TestServer::start().await;
    let (alice_id, alice, alice_device) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let key = SigningKey::new(&alice_device);
    let keys = device_keys(&alice_id, &alice_device, &key);

    // A signature that does not verify, another user's id, keys of another device.
    let mut forged = keys.clone();
    forged["algorithms"] = json!(["m.megolm.v1.aes-sha2"]);
    assert_error(
        &server
            .post(
                &format!("{V3}/keys/upload"),
                Some(&alice),
                json!({"device_keys": forged}),
            )
            .await,
        400,
        "M_INVALID_SIGNATURE",
    );
    let other = device_keys("@bob:test.local", &alice_device, &key);
    assert_error(
        &server
            .post(
                &format!("{V3}/keys/upload"),
                Some(&alice),
                json!({"device_keys": other}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );
    let (status, body) = server
        .post(
            &format!("{V3}/keys/upload"),
            Some(&alice),
            json!({"device_keys": keys}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The same keys again are fine; different identity keys for the same device are not.
    assert_eq!(
        server
            .post(
                &format!("{V3}/keys/upload"),
                Some(&alice),
                json!({"device_keys": keys})
            )
            .await
            .0,
        200
    );
    let replaced = device_keys(&alice_id, &alice_device, &SigningKey::new(&alice_device));
    assert_error(
        &server
            .post(
                &format!("{V3}/keys/upload"),
                Some(&alice),
                json!({"device_keys": replaced}),
            )
            .await,
        400,
        "M_BAD_JSON",
    );

    let (status, query) = server
        .post(
            &format!("{V3}/keys/query"),
            Some(&bob),
            json!({"device_keys": {alice_id.clone(): []}}),
        )
        .await;
    assert_eq!(status, 200, "{query}");
    let got = &query["device_keys"][&alice_id][&alice_device];
    assert_eq!(got["keys"], keys["keys"]);
    assert_eq!(got["signatures"], keys["signatures"]);
    assert!(got.get("unsigned").is_none(), "no display name set: {got}");
    let path = format!("{V3}/devices/{alice_device}");
    server
        .put(
            &path,
            Some(&alice),
            json!({"display_name": "Alice's phone"}),
        )
        .await;
    let path = format!("{V3}/keys/query");
    let query = server
        .post(
            &path,
            Some(&bob),
            json!({"device_keys": {alice_id.clone(): [alice_device.clone()]}}),
        )
        .await
        .1;
    let got = &query["device_keys"][&alice_id][&alice_device];
    assert_eq!(got["unsigned"]["device_display_name"], "Alice's phone");
    // Users on other servers are reported as failures (no federation yet).
    let (_, remote) = server
        .post(
            &format!("{V3}/keys/query"),
            Some(&bob),
            json!({"device_keys": {"@x:elsewhere.example": []}}),
        )
        .await;
    assert!(
        remote["failures"]["elsewhere.example"].is_object(),
        "{remote}"
    );
    assert_error(
        &server
            .post(
                &format!("{V3}/keys/query"),
                None,
                json!({"device_keys": {}}),
            )
            .await,
        401,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn one_time_keys_go_to_exactly_one_claimer_then_the_fallback() {
    let server = TestServer::start().await;
    let (alice_id, alice, alice_device) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let upload = json!({
        "one_time_keys": {"signed_curve25519:AAAAAQ": {"key": "one", "signatures": {}}},
        "fallback_keys": {"signed_curve25519:AAAAFB": {"key": "fallback", "fallback": true, "signatures": {}}},
    });
    let (status, counts) = server
        .post(&format!("{V3}/keys/upload"), Some(&alice), upload)
        .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["one_time_key_counts"]["signed_curve25519"], 1);
    let sync = server.get(&format!("{V3}/sync"), Some(&alice)).await.1;
    assert_eq!(sync["device_one_time_keys_count"]["signed_curve25519"], 1);
    assert_eq!(
        sync["device_unused_fallback_key_types"],
        json!(["signed_curve25519"])
    );

    // Twelve concurrent claims of the one key: one gets it, the rest the fallback key.
    let claims = (0..12).map(|_| {
        let http = server.http.clone();
        let url = format!("{}{V3}/keys/claim", server.base);
        let body = json!({"one_time_keys": {alice_id.clone(): {alice_device.clone(): "signed_curve25519"}}});
        let bob = bob.clone();
        tokio::spawn(async move {
            http.post(url).bearer_auth(bob).json(&body).send().await.expect("sent").json::<Value>().await.expect("json")
        })
    });
    let mut got = Vec::new();
    for claim in claims {
        let response = claim.await.expect("claim");
        let keys = response["one_time_keys"][&alice_id][&alice_device]
            .as_object()
            .expect("a key")
            .clone();
        got.push(
            keys.values().next().expect("one")["key"]
                .as_str()
                .expect("key")
                .to_owned(),
        );
    }
    assert_eq!(got.iter().filter(|k| *k == "one").count(), 1, "{got:?}");
    assert_eq!(got.iter().filter(|k| *k == "fallback").count(), 11);
    let sync = server.get(&format!("{V3}/sync"), Some(&alice)).await.1;
    assert!(
        sync["device_one_time_keys_count"]
            .get("signed_curve25519")
            .is_none_or(|n| n == 0)
    );
    assert_eq!(sync["device_unused_fallback_key_types"], json!([]));
    // A device without keys: nothing to claim.
    let (_, none) = server
        .post(
            &format!("{V3}/keys/claim"),
            Some(&bob),
            json!({"one_time_keys": {alice_id.clone(): {"NOSUCH": "signed_curve25519"}}}),
        )
        .await;
    assert!(
        none["one_time_keys"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "{none}"
    );
}

#[tokio::test]
async fn cross_signing_and_signature_uploads() {
    let server = TestServer::start().await;
    let (alice_id, alice, alice_device) = server.register("alice", "pw-alice-1").await;
    let (bob_id, bob, _) = server.register("bob", "pw-bob-123").await;
    let device = SigningKey::new(&alice_device);
    let keys = device_keys(&alice_id, &alice_device, &device);
    server
        .post(
            &format!("{V3}/keys/upload"),
            Some(&alice),
            json!({"device_keys": keys}),
        )
        .await;

    let master = SigningKey::new("alicemaster");
    let self_signing = SigningKey::new("aliceselfsigning");
    let master_key = cross_signing_key(&alice_id, "master", &master);
    let unsigned_ssk = cross_signing_key(&alice_id, "self_signing", &self_signing);
    assert_error(
        &server
            .post(
                &format!("{V3}/keys/device_signing/upload"),
                Some(&alice),
                json!({"master_key": master_key, "self_signing_key": unsigned_ssk}),
            )
            .await,
        400,
        "M_INVALID_SIGNATURE",
    );
    let ssk = master.sign(&alice_id, unsigned_ssk.clone());
    let upload = json!({"master_key": master_key, "self_signing_key": ssk});
    // The first upload needs no password.
    let (status, body) = server
        .post(
            &format!("{V3}/keys/device_signing/upload"),
            Some(&alice),
            upload.clone(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Replacing them does.
    let (status, challenge) = server
        .post(
            &format!("{V3}/keys/device_signing/upload"),
            Some(&alice),
            upload.clone(),
        )
        .await;
    assert_eq!(status, 401);
    let session = challenge["session"].as_str().expect("session").to_owned();
    let mut with_auth = upload.clone();
    with_auth["auth"] = json!({"type": "m.login.password", "session": session,
        "identifier": {"type": "m.id.user", "user": "alice"}, "password": "pw-alice-1"});
    assert_eq!(
        server
            .post(
                &format!("{V3}/keys/device_signing/upload"),
                Some(&alice),
                with_auth
            )
            .await
            .0,
        200
    );

    // The self-signing key signs the device; a forged signature is reported, not stored.
    let signed_device = self_signing.sign(&alice_id, keys.clone());
    let forged = SigningKey::new("aliceselfsigning").sign(&alice_id, keys.clone());
    let (status, result) = server
        .post(
            &format!("{V3}/keys/signatures/upload"),
            Some(&alice),
            json!({alice_id.clone(): {alice_device.clone(): forged}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        result["failures"][&alice_id][&alice_device]["errcode"],
        "M_INVALID_SIGNATURE"
    );
    let (_, result) = server
        .post(
            &format!("{V3}/keys/signatures/upload"),
            Some(&alice),
            json!({alice_id.clone(): {alice_device.clone(): signed_device}}),
        )
        .await;
    assert!(
        result["failures"].as_object().is_none_or(|f| f.is_empty()),
        "{result}"
    );
    let (_, query) = server
        .post(
            &format!("{V3}/keys/query"),
            Some(&bob),
            json!({"device_keys": {alice_id.clone(): []}}),
        )
        .await;
    let signatures = &query["device_keys"][&alice_id][&alice_device]["signatures"][&alice_id];
    assert!(signatures[self_signing.id()].is_string(), "{query}");
    assert_eq!(query["master_keys"][&alice_id]["keys"], master_key["keys"]);
    assert!(query["self_signing_keys"][&alice_id].is_object());
    assert!(
        query["user_signing_keys"].get(&alice_id).is_none(),
        "only the owner sees it"
    );
    let _ = bob_id;
}

#[tokio::test]
async fn device_list_changes_reach_people_who_share_a_room() {
    let server = TestServer::start().await;
    let (alice_id, alice, alice_device) = server.register("alice", "pw-alice-1").await;
    let (_, bob, _) = server.register("bob", "pw-bob-123").await;
    let (_, created) = server
        .post(
            &format!("{V3}/createRoom"),
            Some(&alice),
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = created["room_id"].as_str().expect("room").to_owned();
    server
        .post(&format!("{V3}/join/{room}"), Some(&bob), json!({}))
        .await;
    let since = server.get(&format!("{V3}/sync"), Some(&bob)).await.1["next_batch"]
        .as_str()
        .expect("next")
        .to_owned();
    let keys = device_keys(&alice_id, &alice_device, &SigningKey::new(&alice_device));
    server
        .post(
            &format!("{V3}/keys/upload"),
            Some(&alice),
            json!({"device_keys": keys}),
        )
        .await;
    let (_, update) = server
        .get(&format!("{V3}/sync?since={since}&timeout=5000"), Some(&bob))
        .await;
    assert_eq!(
        update["device_lists"]["changed"],
        json!([alice_id.clone()]),
        "{update}"
    );
    let next = update["next_batch"].as_str().expect("next").to_owned();
    let (_, changes) = server
        .get(
            &format!("{V3}/keys/changes?from={since}&to={next}"),
            Some(&bob),
        )
        .await;
    assert_eq!(changes["changed"], json!([alice_id.clone()]));

    server
        .post(&format!("{V3}/rooms/{room}/leave"), Some(&alice), json!({}))
        .await;
    let (_, update) = server
        .get(&format!("{V3}/sync?since={next}&timeout=5000"), Some(&bob))
        .await;
    assert_eq!(
        update["device_lists"]["left"],
        json!([alice_id.clone()]),
        "{update}"
    );
    assert_error(
        &server
            .get(
                &format!("{V3}/keys/changes?from=nonsense&to={next}"),
                Some(&bob),
            )
            .await,
        400,
        "M_INVALID_PARAM",
    );
}

#[tokio::test]
async fn key_backup_versions_and_the_better_session_rule() {
    let server = TestServer::start().await;
    let (_, alice, _) = server.register("alice", "pw-alice-1").await;
    assert_error(
        &server
            .get(&format!("{V3}/room_keys/version"), Some(&alice))
            .await,
        404,
        "M_NOT_FOUND",
    );
    let algorithm = json!({"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"public_key": "abc"}});
    let (status, created) = server
        .post(
            &format!("{V3}/room_keys/version"),
            Some(&alice),
            algorithm.clone(),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let version = created["version"].as_str().expect("version").to_owned();
    let (_, latest) = server
        .get(&format!("{V3}/room_keys/version"), Some(&alice))
        .await;
    assert_eq!(latest["version"], version.as_str());
    assert_eq!(latest["count"], 0);
    assert_eq!(latest["auth_data"]["public_key"], "abc");

    let room = "!room:test.local";
    let session = |index: u64, verified: bool, data: &str| {
        json!({"first_message_index": index, "forwarded_count": 0, "is_verified": verified,
               "session_data": {"ciphertext": data}})
    };
    let path = format!("{V3}/room_keys/keys/{room}/sess1?version={version}");
    let (status, put) = server
        .put(&path, Some(&alice), session(5, false, "first"))
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["count"], 1);
    let etag = put["etag"].clone();
    // A worse copy (higher index) is ignored, a better one (verified) replaces it.
    let (_, put) = server
        .put(&path, Some(&alice), session(9, false, "worse"))
        .await;
    assert_eq!(put["etag"], etag, "nothing changed");
    server
        .put(&path, Some(&alice), session(9, true, "verified"))
        .await;
    let (_, got) = server.get(&path, Some(&alice)).await;
    assert_eq!(got["session_data"]["ciphertext"], "verified");
    let (_, all) = server
        .get(
            &format!("{V3}/room_keys/keys?version={version}"),
            Some(&alice),
        )
        .await;
    assert_eq!(
        all["rooms"][room]["sessions"]["sess1"]["session_data"]["ciphertext"],
        "verified"
    );

    // A new version makes the old one stale for uploads.
    let (_, newer) = server
        .post(
            &format!("{V3}/room_keys/version"),
            Some(&alice),
            algorithm.clone(),
        )
        .await;
    let (status, stale) = server
        .put(&path, Some(&alice), session(1, true, "late"))
        .await;
    assert_eq!(
        (status.as_u16(), stale["errcode"].as_str()),
        (403, Some("M_WRONG_ROOM_KEYS_VERSION"))
    );
    assert_eq!(stale["current_version"], newer["version"]);
    assert_error(
        &server
            .get(&format!("{V3}/room_keys/version/999999"), Some(&alice))
            .await,
        404,
        "M_NOT_FOUND",
    );
    let (status, deleted) = server
        .delete(
            &format!("{V3}/room_keys/keys?version={version}"),
            Some(&alice),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["count"], 0);
    assert_eq!(
        server
            .delete(
                &format!("{V3}/room_keys/version/{version}"),
                Some(&alice),
                Value::Null
            )
            .await
            .0,
        200
    );
    assert_error(
        &server
            .get(&format!("{V3}/room_keys/version/{version}"), Some(&alice))
            .await,
        404,
        "M_NOT_FOUND",
    );
}
