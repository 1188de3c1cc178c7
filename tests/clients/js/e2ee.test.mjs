// End-to-end encryption with matrix-js-sdk's Rust crypto (initRustCrypto) in Node: Alice and Bob
// talk in an encrypted room and each reads the other's message; Alice sets up cross-signing and
// key backup, and a new device of hers, once it holds her cross-signing keys and is signed by
// them, reads the room's history from the backup.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { startServer } from "./server.mjs";

logger.setLevel("silent");

let server;
const clients = [];

async function login(name, register) {
    const anon = sdk.createClient({ baseUrl: server.baseUrl });
    const password = `${name} password`;
    const session = register
        ? await anon.registerRequest({ username: name, password, auth: { type: "m.login.dummy" } })
        : await anon.login("m.login.password", { identifier: { type: "m.id.user", user: name }, password });
    const client = sdk.createClient({
        baseUrl: server.baseUrl,
        accessToken: session.access_token,
        userId: session.user_id,
        deviceId: session.device_id,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    await client.startClient({ initialSyncLimit: 20 });
    await new Promise((resolve) => client.once(sdk.ClientEvent.Sync, resolve));
    clients.push(client);
    return { client, password };
}

before(async () => {
    server = await startServer();
});
after(async () => {
    for (const client of clients) client.stopClient();
    await server?.stop();
});

async function until(what, check, ms = 30_000) {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await check();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

/// The clear text of the messages a client has decrypted in a room.
function bodies(client, roomId) {
    const room = client.getRoom(roomId);
    if (!room) return [];
    return room
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getType() === "m.room.message")
        .map((e) => e.getContent().body);
}

test("an encrypted conversation, cross-signing, and history from key backup on a new device", async () => {
    const { client: alice, password } = await login("alice", true);
    const { client: bob } = await login("bob", true);
    const aliceCrypto = alice.getCrypto();

    await aliceCrypto.bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async (makeRequest) =>
            makeRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: "alice" }, password }),
    });
    assert.ok(await aliceCrypto.isCrossSigningReady(), "cross-signing is set up");
    await aliceCrypto.resetKeyBackup();
    assert.ok((await aliceCrypto.checkKeyBackupAndEnable())?.backupInfo, "a backup exists");

    const { room_id: roomId } = await alice.createRoom({
        preset: "private_chat",
        invite: [bob.getUserId()],
        initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await until("bob's invite", () => bob.getRoom(roomId));
    await bob.joinRoom(roomId);
    await until("alice to see bob join", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");

    await alice.sendTextMessage(roomId, "secret from alice");
    await until("bob to decrypt alice's message", () => bodies(bob, roomId).includes("secret from alice"));
    await bob.sendTextMessage(roomId, "secret from bob");
    await until("alice to decrypt bob's message", () => bodies(alice, roomId).includes("secret from bob"));
    const raw = await bob.createMessagesRequest(roomId, null, 10, "b");
    assert.ok(
        raw.chunk.every((e) => e.type !== "m.room.message"),
        "the server only ever sees m.room.encrypted",
    );

    // The room keys reach the backup.
    await until("the backup to hold room keys", async () => {
        const info = await alice.http.authedRequest("GET", "/room_keys/version");
        return info.count > 0;
    });

    // A new device: it gets Alice's secrets (cross-signing keys and the backup key) and is
    // cross-signed, then restores the history from the backup.
    const secrets = await aliceCrypto.exportSecretsBundle();
    const { client: phone } = await login("alice", false);
    const phoneCrypto = phone.getCrypto();
    // The SDK uploads a new device's keys in the background; sign them once they are there.
    await until("the new device's keys on the server", async () => {
        const keys = await alice.http.authedRequest("POST", "/keys/query", undefined, {
            device_keys: { [alice.getUserId()]: [phone.getDeviceId()] },
        });
        return keys.device_keys?.[alice.getUserId()]?.[phone.getDeviceId()];
    });
    await phoneCrypto.importSecretsBundle(secrets);
    await phoneCrypto.crossSignDevice(phone.getDeviceId());
    await until("alice's first device to see the new one as verified", async () => {
        const status = await aliceCrypto.getDeviceVerificationStatus(alice.getUserId(), phone.getDeviceId());
        return status?.crossSigningVerified;
    });
    await phoneCrypto.checkKeyBackupAndEnable();
    const restored = await phoneCrypto.restoreKeyBackup();
    assert.ok(restored.imported > 0, `keys restored: ${JSON.stringify(restored)}`);
    await until("the new device to read the history", () => {
        const seen = bodies(phone, roomId);
        return seen.includes("secret from alice") && seen.includes("secret from bob");
    });
});
