"""A Flask app that signs users in with tessera through authlib's OpenID Connect client:
authorization code + PKCE (S256) + nonce, ID token validated by authlib against the JWKS
from discovery, /userinfo, refresh, and RP-initiated logout.

    TESSERA_ISSUER=https://auth.example.com CLIENT_ID=flask-rp PORT=5000 python app.py

The client is public (no secret) with the redirect URI http://127.0.0.1:PORT/callback and
the post-logout redirect URI http://127.0.0.1:PORT/signed-out (docs/relying-parties.md).
"""

import os
import secrets
import urllib.parse

from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify, redirect, request, session

ISSUER = os.environ["TESSERA_ISSUER"].rstrip("/")
CLIENT_ID = os.environ["CLIENT_ID"]
PORT = int(os.environ.get("PORT", "5000"))
BASE = f"http://127.0.0.1:{PORT}"

app = Flask(__name__)
app.secret_key = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
oauth = OAuth(app)
# Tokens stay on the server (a cookie would outgrow 4 KB); the session cookie holds a key.
TOKENS = {}
oauth.register(
    "tessera",
    client_id=CLIENT_ID,
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_kwargs={
        "scope": "openid profile email",
        "code_challenge_method": "S256",
        "token_endpoint_auth_method": "none",
    },
)


@app.route("/login")
def login():
    # authlib adds state, nonce and the PKCE challenge, and keeps them in the session.
    return oauth.tessera.authorize_redirect(f"{BASE}/callback")


@app.route("/callback")
def callback():
    # Exchanges the code, then validates the ID token: signature (JWKS), iss, aud, exp,
    # nonce and at_hash.
    token = oauth.tessera.authorize_access_token()
    keep(token)
    return jsonify(id_token=dict(token["userinfo"]), userinfo=dict(oauth.tessera.userinfo(token=token)))


def keep(token):
    session.setdefault("key", secrets.token_urlsafe(16))
    TOKENS[session["key"]] = {k: token[k] for k in ("access_token", "refresh_token", "id_token") if k in token}


def held():
    return TOKENS.get(session.get("key", ""))


@app.route("/refresh")
def refresh():
    tokens = held()
    if not tokens:
        return jsonify(error="signed out"), 401
    try:
        token = oauth.tessera.fetch_access_token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        )
    except Exception as error:  # the server refused: the session is over
        return jsonify(error=str(error)), 401
    claims = oauth.tessera.parse_id_token(token, nonce=None) if "id_token" in token else None
    keep(token)
    return jsonify(id_token=dict(claims) if claims else None)


@app.route("/logout")
def logout():
    tokens = held() or {}
    metadata = oauth.tessera.load_server_metadata()
    query = {
        "id_token_hint": tokens.get("id_token", ""),
        "post_logout_redirect_uri": f"{BASE}/signed-out",
        "state": secrets.token_urlsafe(16),
    }
    session["logout_state"] = query["state"]
    return redirect(metadata["end_session_endpoint"] + "?" + urllib.parse.urlencode(query))


@app.route("/signed-out")
def signed_out():
    expected = session.pop("logout_state", None)
    if not expected or request.args.get("state") != expected:
        return jsonify(error="state mismatch"), 400
    return jsonify(signed_out=True)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=PORT)
