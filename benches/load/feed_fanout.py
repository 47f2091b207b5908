#!/usr/bin/env python3
"""Revocation feed fan-out (PERF.md, release 2): N verifiers long-poll
``GET /revocations?since=…&wait=30`` on one tessera; then an admin revokes a session and every
waiting verifier must get it within 1 s. Standard library only (asyncio streams, HTTP/1.1 by
hand), so nothing but Python is needed.

    feed_fanout.py BASE PID CLIENT_ID CLIENT_SECRET ADMIN_USER ADMIN_PASSWORD USER PASSWORD [N]

Prints one JSON object: RSS before and while waiting, CPU seconds the server used during an
idle stretch with every request waiting, and the fan-out latencies (from just before the
revoking request is sent to each waiting verifier's answer).
"""

import asyncio
import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request

IDLE_SECONDS = 5.0


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def password_login(base, username, password):
    body = urllib.parse.urlencode(
        {"grant_type": "password", "username": username, "password": password}
    ).encode()
    with urllib.request.urlopen(f"{base}/oauth/token", body, timeout=30) as response:
        return json.load(response)["access_token"]


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=="))


def feed_once(base, auth):
    request = urllib.request.Request(f"{base}/revocations", headers={"Authorization": auth})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


async def wait_on_feed(host, port, path, auth, started):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    started.append(1)
    data = await reader.read()
    answered = time.monotonic()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    if b"transfer-encoding: chunked" in head.lower():
        chunks, rest = [], body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            size = int(size, 16)
            if size == 0:
                break
            chunks.append(rest[:size])
            rest = rest[size + 2 :]
        body = b"".join(chunks)
    return status, answered, json.loads(body) if status == 200 else None


async def main(argv):
    base, pid, client_id, secret, admin, admin_password, user, password = argv[:8]
    count = int(argv[8]) if len(argv) > 8 else 1000
    pid = int(pid)
    parsed = urllib.parse.urlsplit(base)
    auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    admin_token = password_login(base, admin, admin_password)
    victim = claims(password_login(base, user, password))["sid"]
    cursor = feed_once(base, auth)["next_cursor"]
    time.sleep(1.0)
    rss_before = rss_kb(pid)

    started = []
    path = f"/revocations?since={urllib.parse.quote(cursor)}&wait=30"
    waits = [
        asyncio.create_task(wait_on_feed(parsed.hostname, parsed.port, path, auth, started))
        for _ in range(count)
    ]
    while len(started) < count:
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)  # every request read, authenticated and waiting
    rss_waiting = rss_kb(pid)
    cpu_start = cpu_seconds(pid)
    await asyncio.sleep(IDLE_SECONDS)
    idle_cpu = cpu_seconds(pid) - cpu_start
    rss_waiting = max(rss_waiting, rss_kb(pid))
    early = sum(1 for w in waits if w.done())

    revoked = time.monotonic()
    request = urllib.request.Request(
        f"{base}/admin/sessions/{victim}",
        method="DELETE",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: urllib.request.urlopen(request, timeout=30).read()
    )
    results = await asyncio.gather(*waits, return_exceptions=True)
    latencies, told, errors = [], 0, 0
    for result in results:
        if isinstance(result, BaseException):
            errors += 1
            continue
        status, answered, body = result
        if status != 200:
            errors += 1
            continue
        if any(item["id"] == victim for item in body["items"]):
            told += 1
            latencies.append(answered - revoked)
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

    print(
        json.dumps(
            {
                "verifiers": count,
                "answered_before_revocation": early,
                "told": told,
                "errors": errors,
                "rss_before_kb": rss_before,
                "rss_waiting_kb": rss_waiting,
                "rss_added_mb": round((rss_waiting - rss_before) / 1024, 1),
                "idle_cpu_seconds": round(idle_cpu, 3),
                "idle_seconds": IDLE_SECONDS,
                "fanout_p50_ms": pct(0.50),
                "fanout_p99_ms": pct(0.99),
                "fanout_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
