"""Verifies tessera's ES256 and EdDSA access tokens from its JWKS with PyJWT and jwcrypto,
the way Python resource servers do, against a live tessera.

Environment: TESSERA_ISSUER (issuer and address), ES256_TOKEN, EDDSA_TOKEN, RS256_TOKEN
(client_credentials access tokens of clients with those token_algs). Exits non-zero on the
first failure.
"""

import base64
import json
import os

import jwt
import requests
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

ISSUER = os.environ["TESSERA_ISSUER"]
TOKENS = {
    "ES256": os.environ["ES256_TOKEN"],
    "EdDSA": os.environ["EDDSA_TOKEN"],
    "RS256": os.environ["RS256_TOKEN"],
}

document = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=5).json()
assert document["id_token_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"], document
jwks_json = requests.get(document["jwks_uri"], timeout=5).json()
by_kid = {key["kid"]: key for key in jwks_json["keys"]}
pyjwt_client = jwt.PyJWKClient(document["jwks_uri"])
keyset = jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks_json))


def header(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def tamper(token):
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def pyjwt_verify(token, algorithms):
    key = pyjwt_client.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=algorithms,
        audience=ISSUER,
        issuer=ISSUER,
        leeway=30,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )


def jwcrypto_verify(token, algs):
    verified = jwcrypto_jwt.JWT(
        jwt=token,
        key=keyset,
        algs=algs,
        check_claims={"iss": ISSUER, "aud": ISSUER, "exp": None},
    )
    return json.loads(verified.claims)


def refused(verify, token, *args):
    try:
        verify(token, *args)
    except Exception:  # each library has its own exception types
        return
    raise AssertionError(f"{verify.__name__} accepted a token it must refuse")


checks = 0
for alg, token in TOKENS.items():
    head = header(token)
    assert head["alg"] == alg, head
    jwk = by_kid[head["kid"]]
    assert jwk["alg"] == alg, jwk
    # Each verifier is told the one algorithm the JWK names, as the docs advise.
    claims = pyjwt_verify(token, [jwk["alg"]])
    assert claims["type"] == "access" and claims["iss"] == ISSUER, claims
    claims = jwcrypto_verify(token, [jwk["alg"]])
    assert claims["type"] == "access", claims
    refused(pyjwt_verify, tamper(token), [alg])
    refused(jwcrypto_verify, tamper(token), [alg])
    # Another algorithm than the key's is refused by both libraries.
    other = "RS256" if alg != "RS256" else "ES256"
    refused(pyjwt_verify, token, [other])
    refused(jwcrypto_verify, token, [other])
    checks += 1

assert {k["kty"] for k in jwks_json["keys"]} == {"RSA", "EC", "OKP"}, jwks_json
print(f"{checks * 6} checks passed")
