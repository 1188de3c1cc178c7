// Foundation scenario with matrix-js-sdk: discovery, registration through user-interactive
// auth, login, whoami, devices, password change, refresh tokens, logout.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { startServer } from "./server.mjs";

logger.setLevel("silent");

let server;
before(async () => {
    server = await startServer();
});
after(async () => {
    await server?.stop();
});

async function registerWithUia(username, password) {
    const client = sdk.createClient({ baseUrl: server.baseUrl });
    // Element's order: the first request has no auth and learns the flows and the session.
    const challenge = await client.registerRequest({ username, password }).then(
        () => assert.fail("registration without auth should ask for UIA"),
        (err) => err,
    );
    assert.equal(challenge.httpStatus, 401);
    assert.deepEqual(challenge.data.flows, [{ stages: ["m.login.dummy"] }]);
    return client.registerRequest({
        username,
        password,
        initial_device_display_name: "js-sdk test",
        auth: { type: "m.login.dummy", session: challenge.data.session },
    });
}

function authed(login) {
    return sdk.createClient({
        baseUrl: server.baseUrl,
        accessToken: login.access_token,
        userId: login.user_id,
        deviceId: login.device_id,
    });
}

test("discovery: versions, well-known, login flows", async () => {
    const client = sdk.createClient({ baseUrl: server.baseUrl });
    const versions = await client.getVersions();
    assert.ok(versions.versions.includes("v1.1"));
    const flows = await client.loginFlows();
    assert.ok(flows.flows.some((f) => f.type === "m.login.password"));
    const wellKnown = await fetch(`${server.baseUrl}/.well-known/matrix/client`).then((r) => r.json());
    assert.equal(wellKnown["m.homeserver"].base_url.startsWith("http"), true);
    assert.equal(await client.isUsernameAvailable("nobody-yet"), true);
});

test("register, log in, whoami, devices, log out", async () => {
    const registered = await registerWithUia("alice", "correct horse battery");
    assert.equal(registered.user_id, "@alice:localhost");
    const first = authed(registered);
    assert.equal((await first.whoami()).user_id, "@alice:localhost");

    const anon = sdk.createClient({ baseUrl: server.baseUrl });
    const login = await anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "alice" },
        password: "correct horse battery",
        initial_device_display_name: "second device",
    });
    const second = authed(login);
    const whoami = await second.whoami();
    assert.equal(whoami.user_id, "@alice:localhost");
    assert.equal(whoami.device_id, login.device_id);

    const { devices } = await second.getDevices();
    assert.deepEqual(devices.map((d) => d.display_name).sort(), ["js-sdk test", "second device"]);
    await second.setDeviceDetails(login.device_id, { display_name: "renamed" });
    const { devices: after } = await second.getDevices();
    assert.ok(after.some((d) => d.device_id === login.device_id && d.display_name === "renamed"));

    // Deleting the first device goes through UIA with the account password.
    const uia = await second.deleteDevice(registered.device_id).then(
        () => assert.fail("deleting a device should ask for UIA"),
        (err) => err,
    );
    assert.equal(uia.httpStatus, 401);
    await second.deleteDevice(registered.device_id, {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "alice" },
        password: "correct horse battery",
        session: uia.data.session,
    });
    await assert.rejects(first.whoami(), (err) => err.errcode === "M_UNKNOWN_TOKEN");

    await second.logout(true);
    await assert.rejects(second.whoami(), (err) => err.httpStatus === 401);
});

test("wrong password and unknown users are refused alike", async () => {
    await registerWithUia("bob", "bob's password");
    const anon = sdk.createClient({ baseUrl: server.baseUrl });
    for (const [user, password] of [["bob", "nope"], ["nobody", "nope"]]) {
        await assert.rejects(anon.loginWithPassword(user, password), (err) => {
            assert.equal(err.httpStatus, 403);
            assert.equal(err.errcode, "M_FORBIDDEN");
            return true;
        });
    }
    await assert.rejects(anon.registerRequest({ username: "bob", password: "x", auth: { type: "m.login.dummy" } }), (err) => err.errcode === "M_USER_IN_USE");
});

test("password change through UIA", async () => {
    const registered = await registerWithUia("carol", "old password");
    const client = authed(registered);
    const auth = { type: "m.login.password", identifier: { type: "m.id.user", user: "carol" }, password: "old password" };
    await client.setPassword(auth, "new password", false);
    const anon = sdk.createClient({ baseUrl: server.baseUrl });
    await assert.rejects(anon.loginWithPassword("carol", "old password"));
    const login = await anon.loginWithPassword("carol", "new password");
    assert.equal(login.user_id, "@carol:localhost");
});

test("refresh tokens", async () => {
    await registerWithUia("dave", "dave's password");
    const anon = sdk.createClient({ baseUrl: server.baseUrl });
    const login = await anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "dave" },
        password: "dave's password",
        refresh_token: true,
    });
    assert.ok(login.refresh_token && login.expires_in_ms > 0);
    const refreshed = await anon.refreshToken(login.refresh_token);
    assert.ok(refreshed.access_token && refreshed.access_token !== login.access_token);
    const client = authed({ ...login, access_token: refreshed.access_token });
    assert.equal((await client.whoami()).user_id, "@dave:localhost");
    await assert.rejects(authed(login).whoami(), (err) => err.errcode === "M_UNKNOWN_TOKEN");
});
