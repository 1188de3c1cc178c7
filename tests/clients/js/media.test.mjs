// Media scenario with matrix-js-sdk: Alice uploads an image and a file and sends them to a
// room; Bob finds them in the timeline and downloads both (and a thumbnail) over the
// authenticated media endpoints, byte-identical.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
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

// A 2x2 PNG (red, green, blue, white).
const PNG = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAAMIM/4EAAB/uBfsL2WiLAAAAAElFTkSuQmCC",
    "base64",
);

async function download(client, mxc, width, height, method) {
    const url = client.mxcUrlToHttp(mxc, width, height, method, false, true, true);
    assert.ok(url.includes("/_matrix/client/v1/media/"), url);
    const response = await fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken()}` } });
    assert.equal(response.status, 200, url);
    return { type: response.headers.get("content-type"), bytes: Buffer.from(await response.arrayBuffer()) };
}

test("an image and a file sent to a room, downloaded by the other member", async () => {
    const { room_id: room } = await alice.createRoom({ preset: "private_chat", invite: [bob.getUserId()] });
    await bob.joinRoom(room, { syncRoom: false });

    const image = await alice.uploadContent(PNG, { type: "image/png", name: "dots.png" });
    await alice.sendMessage(room, { msgtype: "m.image", body: "dots.png", url: image.content_uri, info: { mimetype: "image/png", size: PNG.length, w: 2, h: 2 } });
    const file = randomBytes(300_000);
    const upload = await alice.uploadContent(file, { type: "application/octet-stream", name: "data.bin" });
    await alice.sendMessage(room, { msgtype: "m.file", body: "data.bin", url: upload.content_uri, info: { size: file.length } });

    const page = await bob.createMessagesRequest(room, null, 10, "b");
    const sent = Object.fromEntries(
        page.chunk.filter((e) => e.type === "m.room.message").map((e) => [e.content.msgtype, e.content.url]),
    );
    const gotImage = await download(bob, sent["m.image"]);
    assert.equal(gotImage.type, "image/png");
    assert.ok(gotImage.bytes.equals(PNG), "the image is byte-identical");
    const gotFile = await download(bob, sent["m.file"]);
    assert.ok(gotFile.bytes.equals(file), "the file is byte-identical");
    // Smaller than any thumbnail size: the original comes back.
    const thumbnail = await download(bob, sent["m.image"], 32, 32, "crop");
    assert.ok(thumbnail.bytes.equals(PNG));
});
