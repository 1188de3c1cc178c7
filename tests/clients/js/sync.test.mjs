// Sync scenario with matrix-js-sdk's own sync loop (startClient): two users see each other's
// messages arrive, an invite shows up, and a restarted client catches up from its token.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { startServer } from "./server.mjs";

logger.setLevel("silent");

let server;
const clients = [];

before(async () => {
    server = await startServer();
});
after(async () => {
    for (const client of clients) client.stopClient();
    await server?.stop();
});

async function account(name) {
    const anon = sdk.createClient({ baseUrl: server.baseUrl });
    const login = await anon.registerRequest({ username: name, password: `${name} password`, auth: { type: "m.login.dummy" } });
    const client = sdk.createClient({ baseUrl: server.baseUrl, accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id });
    clients.push(client);
    return client;
}

function waitFor(client, event, predicate, ms = 10_000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), ms);
        const listener = (...args) => {
            if (predicate(...args)) {
                clearTimeout(timer);
                client.removeListener(event, listener);
                resolve(args);
            }
        };
        client.on(event, listener);
    });
}

async function started(client) {
    const prepared = waitFor(client, sdk.ClientEvent.Sync, (state) => state === "PREPARED");
    await client.startClient({ initialSyncLimit: 10 });
    await prepared;
}

test("messages and invites arrive through the sync loop", async () => {
    const alice = await account("alice");
    const bob = await account("bob");
    await started(alice);
    await started(bob);

    const invited = waitFor(bob, sdk.RoomEvent.MyMembership, (room, membership) => membership === "invite");
    const { room_id: roomId } = await alice.createRoom({ name: "Synced", invite: [bob.getUserId()] });
    const [invitedRoom] = await invited;
    assert.equal(invitedRoom.roomId, roomId);
    assert.equal(invitedRoom.name, "Synced", "invite state carries the room name");

    const joined = waitFor(bob, sdk.RoomEvent.MyMembership, (room, membership) => room.roomId === roomId && membership === "join");
    await bob.joinRoom(roomId);
    await joined;

    const received = waitFor(bob, sdk.RoomEvent.Timeline, (event) => event.getContent().body === "hello through sync");
    const sentAt = Date.now();
    await alice.sendTextMessage(roomId, "hello through sync");
    const [event] = await received;
    assert.equal(event.getSender(), alice.getUserId());
    assert.ok(Date.now() - sentAt < 5000, "delivered by the long poll, not a later poll");

    const back = waitFor(alice, sdk.RoomEvent.Timeline, (event) => event.getContent().body === "hi alice");
    await bob.sendTextMessage(roomId, "hi alice");
    await back;
    const room = alice.getRoom(roomId);
    assert.deepEqual(room.getJoinedMembers().map((m) => m.userId).sort(), [alice.getUserId(), bob.getUserId()].sort());
});
