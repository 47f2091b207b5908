"""Verifies tessera's tokens the way a PyJWT resource server does, against a live tessera.

Environment: TESSERA_ISSUER (tessera's issuer and address), ACCESS_TOKEN (fresh, from a
password login), REFRESH_TOKEN (from the same login). Exits non-zero on the first failure.
"""

import base64
import hashlib
import hmac
import json
import os

import jwt
import requests
from cryptography.hazmat.primitives import serialization

ISSUER = os.environ["TESSERA_ISSUER"]
AUDIENCE = os.environ.get("TESSERA_AUDIENCE", ISSUER)
ACCESS_TOKEN = os.environ["ACCESS_TOKEN"]
REFRESH_TOKEN = os.environ["REFRESH_TOKEN"]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def discover():
    document = requests.get(f"{ISSUER}/.well-known/oauth-authorization-server", timeout=5)
    document.raise_for_status()
    document = document.json()
    assert document["issuer"] == ISSUER, document
    return jwt.PyJWKClient(document["jwks_uri"], cache_keys=True)


JWKS = discover()


def verify_access(token):
    """What the docs tell PyJWT users to do: RS256 only, issuer, audience, required claims,
    and an access token by both its `typ` header and its `type` claim."""
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        raise jwt.InvalidTokenError(f"typ {header.get('typ')!r} is not an access token")
    key = JWKS.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=30,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    if claims.get("type") != "access":
        raise jwt.InvalidTokenError("not an access token")
    return claims


def refused(token, why):
    try:
        verify_access(token)
    except (jwt.InvalidTokenError, jwt.PyJWKClientError):
        print(f"ok: {why} is refused")
        return
    raise AssertionError(f"{why} was accepted")


claims = verify_access(ACCESS_TOKEN)
assert claims["type"] == "access", claims
assert claims["fresh"] is True, claims
assert isinstance(claims["sub"], str), claims
assert isinstance(claims["roles"], list), claims
print(f"ok: access token of {claims['username']} verifies, fresh")

# PyJWT alone, told the audience but not to look at `typ`/`type`, refuses a refresh token:
# its `aud` is the token endpoint, never an access-token audience (SPEC §6.1).
try:
    jwt.decode(
        REFRESH_TOKEN,
        JWKS.get_signing_key_from_jwt(REFRESH_TOKEN).key,
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
    )
except jwt.InvalidAudienceError:
    print("ok: a refresh token is refused for its audience, without a typ check")
else:
    raise AssertionError("a refresh token passed a plain jwt.decode")
refresh_claims = jwt.decode(
    REFRESH_TOKEN,
    JWKS.get_signing_key_from_jwt(REFRESH_TOKEN).key,
    algorithms=["RS256"],
    audience=f"{ISSUER}/oauth/token",
    issuer=ISSUER,
)
assert refresh_claims["type"] == "refresh", refresh_claims
refused(REFRESH_TOKEN, "a refresh token")
header, payload, signature = REFRESH_TOKEN.split(".")
relabelled = json.loads(base64.urlsafe_b64decode(header + "=="))
relabelled["typ"] = "at+jwt"
refused(f"{b64(json.dumps(relabelled).encode())}.{payload}.{signature}", "a relabelled refresh token")

header, payload, signature = ACCESS_TOKEN.split(".")
forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
forged["roles"] = ["admin"]
forged_payload = b64(json.dumps(forged).encode())
refused(f"{header}.{forged_payload}.{signature}", "a tampered token")

kid = jwt.get_unverified_header(ACCESS_TOKEN)["kid"]
none_header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
refused(f"{none_header}.{forged_payload}.", "an alg:none token")

# The classic confusion attack: HS256 signed with the public key as the HMAC secret.
public_pem = JWKS.get_signing_key(kid).key.public_bytes(
    encoding=serialization.Encoding.PEM,
    format=serialization.PublicFormat.SubjectPublicKeyInfo,
)
hs_header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
mac = hmac.new(public_pem, f"{hs_header}.{forged_payload}".encode(), hashlib.sha256).digest()
refused(f"{hs_header}.{forged_payload}.{b64(mac)}", "an HS256 token keyed with the public key")

unknown_header = b64(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "no-such-key"}).encode())
refused(f"{unknown_header}.{payload}.{signature}", "a token with an unknown kid")

try:
    jwt.decode(
        ACCESS_TOKEN,
        JWKS.get_signing_key_from_jwt(ACCESS_TOKEN).key,
        algorithms=["RS256"],
        audience="https://another.api",
        issuer=ISSUER,
    )
except jwt.InvalidAudienceError:
    print("ok: another audience is refused")
else:
    raise AssertionError("another audience was accepted")

print("all PyJWT checks passed")
