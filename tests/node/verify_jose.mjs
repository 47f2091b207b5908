// Verifies tessera's tokens the way a careless `jose` resource server would: signature,
// issuer, audience and expiry, but neither `typ` nor the `type` claim. A refresh token must
// still be refused, because its `aud` is the token endpoint (SPEC §6.1).
//
// Environment: TESSERA_ISSUER (tessera's issuer and address), ACCESS_TOKEN, REFRESH_TOKEN
// (from one password login). Exits non-zero on the first failure.

import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';

const ISSUER = process.env.TESSERA_ISSUER;
const AUDIENCE = process.env.TESSERA_AUDIENCE ?? ISSUER;
const { ACCESS_TOKEN, REFRESH_TOKEN } = process.env;

const discovery = await (await fetch(`${ISSUER}/.well-known/oauth-authorization-server`)).json();
assert.equal(discovery.issuer, ISSUER);
const JWKS = createRemoteJWKSet(new URL(discovery.jwks_uri));

// No `typ` option and no look at `type`: only what jwtVerify checks when told the audience.
const careless = (token) =>
  jwtVerify(token, JWKS, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'] });

const { payload } = await careless(ACCESS_TOKEN);
assert.equal(payload.type, 'access');
console.log(`ok: access token of ${payload.username} verifies`);

assert.equal(decodeJwt(REFRESH_TOKEN).aud, `${ISSUER}/oauth/token`);
await assert.rejects(careless(REFRESH_TOKEN), (error) => {
  assert.equal(error.code, 'ERR_JWT_CLAIM_VALIDATION_FAILED');
  assert.equal(error.claim, 'aud');
  return true;
});
console.log('ok: a refresh token is refused for its audience, without a typ check');

// And it is a well-signed tessera token all the same: only the audience keeps it out.
const { payload: refresh } = await jwtVerify(REFRESH_TOKEN, JWKS, {
  issuer: ISSUER,
  audience: `${ISSUER}/oauth/token`,
  algorithms: ['RS256'],
});
assert.equal(refresh.type, 'refresh');
console.log('ok: the refresh token verifies for the token endpoint audience');

console.log('all jose checks passed');
