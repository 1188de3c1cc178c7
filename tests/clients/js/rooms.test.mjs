// Rooms scenario with matrix-js-sdk: two users, a DM and a group room, invite and join,
// messages, a kick and a mute by power levels, and history paged back to the start.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { startServer } from "./server.mjs";

logger.setLevel("silent");

let server;
let alice;
let bob;

async function account(name) {
    const anon = sdk.createClient({ baseUrl: server.baseUrl });
    const login = await anon.registerRequest({ username: name, password: `${name} password`, auth: { type: "m.login.dummy" } });
    return sdk.createClient({ baseUrl: server.baseUrl, accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id });
}

before(async () => {
    server = await startServer();
    alice = await account("alice");
    bob = await account("bob");
});
after(async () => {
    await server?.stop();
});

async function history(client, roomId) {
    // Page backwards 5 at a time until the start of the room.
    const events = [];
    let from = null;
    for (let pages = 0; pages < 100; pages++) {
        const page = await client.createMessagesRequest(roomId, from, 5, "b");
        events.push(...page.chunk);
        if (!page.end) break;
        from = page.end;
    }
    return events;
}

test("a direct chat: invite, join, talk, m.direct", async () => {
    const { room_id: dm } = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [bob.getUserId()] });
    await alice.setAccountDataRaw("m.direct", { [bob.getUserId()]: [dm] });
    assert.deepEqual(await alice.getAccountDataFromServer("m.direct"), { [bob.getUserId()]: [dm] });

    const invite = await alice.getStateEvent(dm, "m.room.member", bob.getUserId());
    assert.equal(invite.membership, "invite");
    assert.equal(invite.is_direct, true);
    await bob.joinRoom(dm, { syncRoom: false });
    assert.ok((await bob.getJoinedRooms()).joined_rooms.includes(dm));

    await alice.sendTextMessage(dm, null, "hi bob");
    await bob.sendTextMessage(dm, null, "hi alice");
    const bodies = (await history(bob, dm)).filter((e) => e.type === "m.room.message").map((e) => e.content.body);
    assert.deepEqual(bodies, ["hi alice", "hi bob"]);
});

test("a group room: join by alias, kick, mute, history to the start", async () => {
    const { room_id: group } = await alice.createRoom({ preset: "public_chat", name: "Group", room_alias_name: "group" });
    const { room_id: resolved } = await bob.getRoomIdForAlias("#group:localhost");
    assert.equal(resolved, group);
    await bob.joinRoom("#group:localhost", { syncRoom: false });
    for (let i = 0; i < 12; i++) {
        await (i % 2 ? bob : alice).sendTextMessage(group, null, `message ${i}`);
    }

    // Mute: bob's level below events_default, and his sends are refused.
    const powerLevels = await alice.getStateEvent(group, "m.room.power_levels", "");
    await alice.setPowerLevel(group, bob.getUserId(), -1);
    await assert.rejects(bob.sendTextMessage(group, null, "can you hear me"), (err) => err.errcode === "M_FORBIDDEN");
    await alice.sendStateEvent(group, "m.room.power_levels", powerLevels, "");
    await bob.sendTextMessage(group, null, "unmuted");

    // Bob may not kick alice; alice may kick bob.
    await assert.rejects(bob.kick(group, alice.getUserId(), "no"), (err) => err.errcode === "M_FORBIDDEN");
    await alice.kick(group, bob.getUserId(), "that's enough");
    const kicked = await alice.getStateEvent(group, "m.room.member", bob.getUserId());
    assert.equal(kicked.membership, "leave");
    assert.equal(kicked.reason, "that's enough");
    await assert.rejects(bob.sendTextMessage(group, null, "still here?"), (err) => err.errcode === "M_FORBIDDEN");

    const events = await history(alice, group);
    assert.equal(events.at(-1).type, "m.room.create", "history reaches the room's first event");
    const bodies = events.filter((e) => e.type === "m.room.message").map((e) => e.content.body).reverse();
    assert.deepEqual(bodies, [...Array.from({ length: 12 }, (_, i) => `message ${i}`), "unmuted"]);
    const members = await alice.members(group);
    assert.ok(members.chunk.some((e) => e.state_key === bob.getUserId() && e.content.membership === "leave"));
});
