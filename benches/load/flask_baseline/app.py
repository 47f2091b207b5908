"""The stack tessera replaces: Flask + Flask-JWT-Extended issuing RS256 token pairs.

The private key is loaded once at start-up into a `cryptography` key object (the fast way;
giving Flask-JWT-Extended the PEM text, as its docs show, re-parses it on every token and
runs at a few dozen tokens/s). No password check and no database: this is the upper bound
of the token-issuing part of that stack.

    POST /token    -> {"access_token","refresh_token"}   (two RS256 signatures)
    POST /refresh  -> {"access_token"}   (Authorization: Bearer <refresh token>; verify + sign)
"""

import os

from cryptography.hazmat.primitives import serialization
from flask import Flask, jsonify
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_jwt_identity,
    jwt_required,
)

app = Flask(__name__)

# One PEM file shared by every gunicorn worker, so that each verifies the others' tokens.
with open(os.environ["BASELINE_KEY_FILE"], "rb") as f:
    _private = serialization.load_pem_private_key(f.read(), password=None)

app.config["JWT_ALGORITHM"] = "RS256"
app.config["JWT_PRIVATE_KEY"] = _private
app.config["JWT_PUBLIC_KEY"] = _private.public_key()
app.config["JWT_TOKEN_LOCATION"] = ["headers"]
JWTManager(app)


@app.post("/token")
def token():
    return jsonify(
        access_token=create_access_token(identity="bench-user"),
        refresh_token=create_refresh_token(identity="bench-user"),
    )


@app.post("/refresh")
@jwt_required(refresh=True)
def refresh():
    return jsonify(access_token=create_access_token(identity=get_jwt_identity()))
