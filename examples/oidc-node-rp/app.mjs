// A Node app that signs users in with tessera through `openid-client` (v6): authorization
// code + PKCE (S256) + nonce, the ID token validated by the library, userinfo, refresh, and
// RP-initiated logout. No framework: node's http module.
//
//   TESSERA_ISSUER=https://auth.example.com CLIENT_ID=node-rp PORT=3000 node app.mjs
//
// The client is public with the redirect URI http://127.0.0.1:PORT/callback and the
// post-logout redirect URI http://127.0.0.1:PORT/signed-out (docs/relying-parties.md).
import http from 'node:http';
import * as client from 'openid-client';

const issuer = new URL(process.env.TESSERA_ISSUER);
const port = Number(process.env.PORT || 3000);
const base = `http://127.0.0.1:${port}`;
// Plain http is for a tessera on loopback in development and tests only.
const options = issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {};
const config = await client.discovery(issuer, process.env.CLIENT_ID, undefined, client.None(), options);

// Per-browser state, keyed by the `rp` cookie.
const browsers = new Map();

function browserOf(req, res) {
  const cookie = /(?:^|; )rp=([^;]+)/.exec(req.headers.cookie || '');
  if (cookie && browsers.has(cookie[1])) return browsers.get(cookie[1]);
  const key = client.randomState();
  const state = {};
  browsers.set(key, state);
  res.setHeader('set-cookie', `rp=${key}; HttpOnly; SameSite=Lax; Path=/`);
  return state;
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(req, res) {
  const url = new URL(req.url, base);
  const browser = browserOf(req, res);
  if (url.pathname === '/login') {
    browser.verifier = client.randomPKCECodeVerifier();
    browser.nonce = client.randomNonce();
    browser.state = client.randomState();
    const target = client.buildAuthorizationUrl(config, {
      redirect_uri: `${base}/callback`,
      scope: 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(browser.verifier),
      code_challenge_method: 'S256',
      nonce: browser.nonce,
      state: browser.state,
    });
    res.writeHead(302, { location: target.href });
    return res.end();
  }
  if (url.pathname === '/callback') {
    // Checks state and iss, exchanges the code, validates the ID token (signature, iss,
    // aud, exp, nonce).
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: browser.verifier,
      expectedNonce: browser.nonce,
      expectedState: browser.state,
    });
    browser.tokens = tokens;
    const claims = tokens.claims();
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    return json(res, 200, { id_token: claims, userinfo });
  }
  if (url.pathname === '/refresh') {
    if (!browser.tokens) return json(res, 401, { error: 'signed out' });
    try {
      const tokens = await client.refreshTokenGrant(config, browser.tokens.refresh_token);
      browser.tokens = { ...tokens, id_token: tokens.id_token || browser.tokens.id_token };
      return json(res, 200, { id_token: tokens.claims() || null });
    } catch (error) {
      return json(res, 401, { error: String(error) });
    }
  }
  if (url.pathname === '/logout') {
    browser.logoutState = client.randomState();
    const target = client.buildEndSessionUrl(config, {
      id_token_hint: browser.tokens ? browser.tokens.id_token : undefined,
      post_logout_redirect_uri: `${base}/signed-out`,
      state: browser.logoutState,
    });
    res.writeHead(302, { location: target.href });
    return res.end();
  }
  if (url.pathname === '/signed-out') {
    const expected = browser.logoutState;
    delete browser.logoutState;
    if (!expected || url.searchParams.get('state') !== expected) {
      return json(res, 400, { error: 'state mismatch' });
    }
    return json(res, 200, { signed_out: true });
  }
  return json(res, 404, { error: 'not found' });
}

http
  .createServer((req, res) => handle(req, res).catch((e) => json(res, 500, { error: String(e) })))
  .listen(port, '127.0.0.1');
