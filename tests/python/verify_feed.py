"""The Flask-JWT-Extended example (examples/flask-resource-server/app.py) with its revocation
feed poller: it accepts ACCESS_TOKEN, says "ready" once its poller has read the feed, then,
when told on stdin that tessera revoked something, must refuse the same token within 2 s,
learning of it only through the feed (it never calls introspection).

Environment: TESSERA_ISSUER, FEED_CLIENT_ID, FEED_CLIENT_SECRET, ACCESS_TOKEN.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "flask-resource-server"))

from app import create_app  # noqa: E402

ISSUER = os.environ["TESSERA_ISSUER"]
TOKEN = os.environ["ACCESS_TOKEN"]

app = create_app(
    issuer=ISSUER,
    feed_client=(os.environ["FEED_CLIENT_ID"], os.environ["FEED_CLIENT_SECRET"]),
)
feed = app.extensions["tessera_feed"]
client = app.test_client()


def me():
    return client.get("/api/me", headers={"Authorization": f"Bearer {TOKEN}"})


assert feed.synced.wait(10), "the poller never read the feed"
response = me()
assert response.status_code == 200, (response.status_code, response.get_json(silent=True))
print("ok: the token is accepted before the revocation")
print("ready", flush=True)

line = sys.stdin.readline()
assert line.strip() == "revoked", line
told = time.monotonic()
while True:
    response = me()
    if response.status_code == 401:
        break
    assert response.status_code == 200, response.status_code
    assert time.monotonic() - told < 2.0, "the revoked token was still accepted after 2 s"
    time.sleep(0.02)
elapsed = time.monotonic() - told
body = response.get_json()
assert body["error"] == "invalid_token", body
assert body["error_description"] == "token revoked", body
assert "Bearer" in response.headers.get("WWW-Authenticate", "")
print(f"ok: refused {elapsed * 1000:.0f} ms after the revocation")
feed.stop()
print("all revocation feed checks passed", flush=True)
