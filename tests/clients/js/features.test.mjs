// Everyday features with matrix-js-sdk: a thread, a reaction, an edit, a search hit, and a
// push notification on a mention (read back from /notifications and the unread counts).
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

test("a thread, a reaction, an edit, a search hit and a mention notification", async () => {
    const { room_id: roomId } = await alice.createRoom({ preset: "public_chat", name: "Features" });
    await bob.joinRoom(roomId, { syncRoom: false });

    const { event_id: root } = await alice.sendMessage(roomId, { msgtype: "m.text", body: "Who wants pizza?" });
    await bob.sendMessage(roomId, root, { msgtype: "m.text", body: "Me!", "m.relates_to": { rel_type: "m.thread", event_id: root } });
    await bob.sendEvent(roomId, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: root, key: "🍕" } });
    await alice.sendMessage(roomId, {
        msgtype: "m.text",
        body: "* Who wants pizza tonight?",
        "m.new_content": { msgtype: "m.text", body: "Who wants pizza tonight?" },
        "m.relates_to": { rel_type: "m.replace", event_id: root },
    });

    // The root carries the thread summary and the edit.
    const served = await bob.fetchRoomEvent(roomId, root);
    const relations = served.unsigned["m.relations"];
    assert.equal(relations["m.thread"].count, 1);
    assert.equal(relations["m.thread"].latest_event.content.body, "Me!");
    assert.equal(relations["m.replace"].content["m.new_content"].body, "Who wants pizza tonight?");
    const reactions = await bob.relations(roomId, root, "m.annotation", "m.reaction");
    assert.deepEqual(reactions.events.map((e) => e.getContent()["m.relates_to"].key), ["🍕"]);

    // Search finds the message.
    const found = await bob.search({ body: { search_categories: { room_events: { search_term: "pizza", order_by: "recent" } } } });
    const hits = found.search_categories.room_events.results.map((r) => r.result.content.body);
    assert.ok(hits.includes("Who wants pizza?"), JSON.stringify(hits));

    // A mention notifies and highlights.
    await alice.sendMessage(roomId, {
        msgtype: "m.text",
        body: "bob, you're buying",
        "m.mentions": { user_ids: [bob.getUserId()] },
    });
    const notifications = await bob.http.authedRequest("GET", "/notifications", { only: "highlight" });
    assert.equal(notifications.notifications[0].event.content.body, "bob, you're buying");
    const sync = await bob.http.authedRequest("GET", "/sync");
    assert.ok(sync.rooms.join[roomId].unread_notifications.highlight_count >= 1);
});
