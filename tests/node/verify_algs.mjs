// Verifies tessera's ES256 and EdDSA access tokens with node's `jose`, as a Node resource
// server does: discovery, then createRemoteJWKSet and jwtVerify with the one algorithm.
//
// Environment: TESSERA_ISSUER, ES256_TOKEN, EDDSA_TOKEN, RS256_TOKEN. Exits non-zero on the
// first failure.
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";

const issuer = process.env.TESSERA_ISSUER;
const tokens = {
  ES256: process.env.ES256_TOKEN,
  EdDSA: process.env.EDDSA_TOKEN,
  RS256: process.env.RS256_TOKEN,
};

const document = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(document.jwks_uri));

function tamper(token) {
  const [head, payload, signature] = token.split(".");
  const claims = JSON.parse(Buffer.from(payload, "base64url"));
  claims.sub = "someone-else";
  return `${head}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
}

async function refused(token, algorithms) {
  try {
    await jwtVerify(token, jwks, { issuer, audience: issuer, algorithms });
  } catch {
    return;
  }
  throw new Error(`jose accepted a token it must refuse (${algorithms})`);
}

let checks = 0;
for (const [alg, token] of Object.entries(tokens)) {
  if (decodeProtectedHeader(token).alg !== alg) throw new Error(`${alg} token has another alg`);
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience: issuer,
    algorithms: [alg],
    typ: "at+jwt",
    clockTolerance: 30,
  });
  if (payload.type !== "access" || protectedHeader.alg !== alg) {
    throw new Error(`unexpected ${alg} token: ${JSON.stringify(payload)}`);
  }
  await refused(tamper(token), [alg]);
  await refused(token, [alg === "RS256" ? "ES256" : "RS256"]);
  checks += 3;
}
console.log(`${checks} checks passed`);
