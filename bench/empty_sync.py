#!/usr/bin/env python3
"""Cost of an incremental /sync with nothing new, for a user in many rooms.

mxbench has no scenario for this, so this small load generator measures it: one user joins
ROOMS rooms with MESSAGES messages each, does an initial sync, then makes N incremental
`/sync?since=<token>&timeout=0` calls while nothing changes for them, and (second phase) the same
while another user keeps posting in a room the first user is *not* in. It reports the latency per
call and, with --pid, the server CPU time per call (from /proc).

    python bench/empty_sync.py --base-url http://127.0.0.1:28010 --pid 1234
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid

import aiohttp


def cpu_seconds(pid):
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def register(session, base, name):
    body = {"username": name, "password": "bench-password-1", "auth": {"type": "m.login.dummy"}}
    async with session.post(f"{base}/_matrix/client/v3/register", json=body) as r:
        data = await r.json()
        if r.status != 200:
            raise SystemExit(f"register {name}: {r.status} {data}")
        return data["access_token"]


async def call(session, method, url, token, body=None):
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        data = await r.json()
        if r.status != 200:
            raise SystemExit(f"{method} {url}: {r.status} {data}")
        return data


async def measure(session, base, token, since, n, pid):
    latencies = []
    cpu_before = cpu_seconds(pid)
    for _ in range(n):
        start = time.perf_counter()
        data = await call(session, "GET", f"{base}/_matrix/client/v3/sync?since={since}&timeout=0", token)
        latencies.append((time.perf_counter() - start) * 1000)
        if data.get("rooms", {}).get("join"):
            raise SystemExit(f"expected an empty sync, got rooms: {list(data['rooms']['join'])[:3]}")
    cpu = cpu_seconds(pid) - cpu_before
    latencies.sort()
    return {
        "median_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "server_cpu_ms_per_call": round(cpu * 1000 / n, 3) if pid else None,
    }


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True)
    p.add_argument("--pid", type=int, default=None, help="server pid, for CPU time per call")
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--messages", type=int, default=20)
    p.add_argument("-n", type=int, default=2000, help="empty syncs per phase")
    args = p.parse_args()
    base = args.base_url.rstrip("/")
    run = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as session:
        reader = await register(session, base, f"idle-{run}")
        writer = await register(session, base, f"busy-{run}")
        for i in range(args.rooms):
            room = (await call(session, "POST", f"{base}/_matrix/client/v3/createRoom", reader, {}))["room_id"]
            for m in range(args.messages):
                await call(session, "PUT", f"{base}/_matrix/client/v3/rooms/{room}/send/m.room.message/{i}-{m}",
                           reader, {"msgtype": "m.text", "body": f"message {m}"})
        other = (await call(session, "POST", f"{base}/_matrix/client/v3/createRoom", writer, {}))["room_id"]
        since = (await call(session, "GET", f"{base}/_matrix/client/v3/sync", reader))["next_batch"]
        quiet = await measure(session, base, reader, since, args.n, args.pid)
        print(f"nothing new anywhere ({args.rooms} rooms): {quiet}")

        stop = asyncio.Event()

        async def chatter():
            k = 0
            while not stop.is_set():
                k += 1
                await call(session, "PUT", f"{base}/_matrix/client/v3/rooms/{other}/send/m.room.message/c{k}",
                           writer, {"msgtype": "m.text", "body": "elsewhere"})

        task = asyncio.create_task(chatter())
        busy = await measure(session, base, reader, since, args.n, None)
        stop.set()
        await task
        print(f"others posting elsewhere meanwhile: {busy}")


if __name__ == "__main__":
    asyncio.run(main())
