"""End-to-end browser sign-in through tessera's hosted pages, in headless Chromium driven by
Playwright (Debian's /usr/bin/chromium: never `playwright install`), plus authlib's
OAuth2Session doing the authorization code flow with PKCE S256.

The client apps are a loopback HTTP server of this script. Environment: TESSERA_URL,
CHROMIUM, SPA_CLIENT, SPA_PATH, THIRD_CLIENT, THIRD_PATH (their redirect URIs' paths on
http://127.0.0.1), USERNAME, PASSWORD, TOTP_USERNAME, TOTP_SECRET, SCREENSHOTS (a folder).
"""

import base64
import hashlib
import hmac
import http.server
import os
import secrets
import struct
import sys
import threading
import time
import urllib.parse

import requests
from playwright.sync_api import sync_playwright

BASE = os.environ["TESSERA_URL"]
SPA, THIRD = os.environ["SPA_CLIENT"], os.environ["THIRD_CLIENT"]
CALLBACKS = None
SPA_REDIRECT = THIRD_REDIRECT = ""
USER, PASSWORD = os.environ["USERNAME"], os.environ["PASSWORD"]
TOTP_USER, TOTP_SECRET = os.environ["TOTP_USERNAME"], os.environ["TOTP_SECRET"]
SHOTS = os.environ["SCREENSHOTS"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
checks = 0


def check(condition, message):
    global checks
    if not condition:
        print("FAILED:", message)
        sys.exit(1)
    checks += 1


def pkce():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(client, redirect, challenge, **extra):
    query = {
        "response_type": "code",
        "client_id": client,
        "redirect_uri": redirect,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        **extra,
    }
    return BASE + "/oauth/authorize?" + urllib.parse.urlencode(query)


def totp(secret, step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1_000_000)


def exchange(client, redirect, code, verifier):
    return requests.post(BASE + "/oauth/token", data={
        "grant_type": "authorization_code", "client_id": client, "code": code,
        "redirect_uri": redirect, "code_verifier": verifier,
    }, timeout=10)


def shot(page, name):
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


class Callbacks:
    """A loopback HTTP server standing in for the client apps (their redirect URIs are
    loopback IP literals, which match on any port, RFC 8252 §7.3); remembers every
    redirect it received."""

    urls = []

    def __init__(self):
        callbacks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/favicon"):
                    self.send_response(404)
                    self.end_headers()
                    return
                callbacks.urls.append(f"http://127.0.0.1:{callbacks.port}{self.path}")
                body = b"<!doctype html><title>app</title>ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def uri(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def last(self):
        return urllib.parse.parse_qs(urllib.parse.urlparse(self.urls[-1]).query)


def sign_in(page, username, password):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], args=["--no-sandbox"])
        global SPA_REDIRECT, THIRD_REDIRECT
        callbacks = Callbacks()
        SPA_REDIRECT = callbacks.uri(os.environ["SPA_PATH"])
        THIRD_REDIRECT = callbacks.uri(os.environ["THIRD_PATH"])
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()

        # prompt=none without a session: straight back with login_required.
        verifier, challenge = pkce()
        page.goto(authorize_url(SPA, SPA_REDIRECT, challenge, prompt="none"))
        check(callbacks.last()["error"] == ["login_required"], "prompt=none without a session")

        # A bad redirect URI: an error page on tessera, no redirect.
        response = page.goto(authorize_url(SPA, "https://evil.example/cb", challenge))
        check(response.status == 400, "bad redirect URI is a 400 page")
        check(page.url.startswith(BASE), "the browser stays on tessera")
        check("not registered" in page.content(), "the page says why")
        shot(page, "error")

        # The SPA signs a user in with PKCE; the code buys tokens; /userinfo answers.
        verifier, challenge = pkce()
        page.goto(authorize_url(SPA, SPA_REDIRECT, challenge))
        check(page.url.startswith(BASE + "/login"), "sent to the sign-in page")
        check(page.locator("html").get_attribute("lang") == "en", "pages have lang")
        shot(page, "login")
        sign_in(page, USER, "wrong password")
        check("Wrong username or password." in page.content(), "one message for a wrong password")
        shot(page, "login-error")
        sign_in(page, USER, PASSWORD)
        page.wait_for_url(SPA_REDIRECT + "*")
        check("code" in callbacks.last(), f"a code came back: {callbacks.urls[-1]}")
        code = callbacks.last()["code"][0]
        check(callbacks.last()["iss"] == [BASE], "iss in the response")
        tokens = exchange(SPA, SPA_REDIRECT, code, verifier)
        check(tokens.status_code == 200, f"code exchange: {tokens.text}")
        access = tokens.json()["access_token"]
        info = requests.get(BASE + "/userinfo", headers={"Authorization": "Bearer " + access}, timeout=10)
        check(info.status_code == 200 and info.json()["username"] == USER, "userinfo")

        # The code again: refused, and the session it started is over.
        again = exchange(SPA, SPA_REDIRECT, code, verifier)
        check(again.status_code == 400 and again.json()["error"] == "invalid_grant", "reused code")
        info = requests.get(BASE + "/userinfo", headers={"Authorization": "Bearer " + access}, timeout=10)
        check(info.status_code == 401, "the reused code's session ended")

        # prompt=none with a session: a code without any page.
        verifier, challenge = pkce()
        page.goto(authorize_url(SPA, SPA_REDIRECT, challenge, prompt="none"))
        check("code" in callbacks.last(), "prompt=none with a session")

        # A third-party client asks once; the answer is remembered; Deny is access_denied.
        verifier, challenge = pkce()
        page.goto(authorize_url(THIRD, THIRD_REDIRECT, challenge, scope="profile email"))
        check("Allow access?" in page.content(), "consent page for a third-party client")
        shot(page, "consent")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(THIRD_REDIRECT + "*")
        check(exchange(THIRD, THIRD_REDIRECT, callbacks.last()["code"][0], verifier).status_code == 200, "allowed")
        verifier, challenge = pkce()
        page.goto(authorize_url(THIRD, THIRD_REDIRECT, challenge, scope="profile email"))
        check("code" in callbacks.last(), "consent remembered")
        page.goto(authorize_url(THIRD, THIRD_REDIRECT, challenge, scope="profile email", prompt="consent"))
        page.get_by_role("button", name="Deny").click()
        page.wait_for_url(THIRD_REDIRECT + "*")
        check(callbacks.last()["error"] == ["access_denied"], "deny")

        # The account page, with the consent listed and TOTP enrolment's QR code.
        page.goto(BASE + "/account")
        check(THIRD in page.content(), "consent listed")
        shot(page, "account")
        page.get_by_label("Your password").fill(PASSWORD)
        page.get_by_role("button", name="Set up").click()
        check(page.locator(".qr svg").count() == 1, "QR code shown")
        shot(page, "account-totp")

        # A user with TOTP: the code step follows the password.
        other = browser.new_context(viewport=DESKTOP)
        totp_page = other.new_page()
        verifier, challenge = pkce()
        totp_page.goto(authorize_url(SPA, SPA_REDIRECT, challenge))
        sign_in(totp_page, TOTP_USER, PASSWORD)
        check(totp_page.get_by_label("Authentication code").count() == 1, "the code step")
        shot(totp_page, "login-totp")
        for attempt in range(2):
            totp_page.get_by_label("Authentication code").fill(totp(TOTP_SECRET, int(time.time()) // 30))
            totp_page.get_by_role("button", name="Verify").click()
            if totp_page.url.startswith(SPA_REDIRECT):
                break
            time.sleep(30 - time.time() % 30 + 1)
        totp_page.wait_for_url(SPA_REDIRECT + "*")
        query = callbacks.last()
        tokens = exchange(SPA, SPA_REDIRECT, query["code"][0], verifier)
        check(tokens.status_code == 200, "TOTP sign-in exchange")

        # Sign-up page (registration open).
        fresh = browser.new_context(viewport=DESKTOP).new_page()
        fresh.goto(BASE + "/signup")
        shot(fresh, "signup")

        # authlib's OAuth2Session runs the flow with PKCE S256 and checks state itself.
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
        from authlib.integrations.requests_client import OAuth2Session

        session = OAuth2Session(SPA, redirect_uri=SPA_REDIRECT, scope="profile",
                                code_challenge_method="S256", token_endpoint_auth_method="none")
        verifier = secrets.token_urlsafe(48)
        uri, state = session.create_authorization_url(BASE + "/oauth/authorize", code_verifier=verifier)
        page.goto(uri)
        page.wait_for_url(SPA_REDIRECT + "*")
        token = session.fetch_token(BASE + "/oauth/token", authorization_response=callbacks.urls[-1],
                                    code_verifier=verifier, state=state)
        check("access_token" in token and "refresh_token" in token, "authlib got tokens")
        check(session.get(BASE + "/userinfo", timeout=10).json()["username"] == USER, "authlib userinfo")

        # Signing out ends the browser session.
        page.goto(BASE + "/account")
        page.get_by_role("button", name="Sign out", exact=True).click()
        check("You have signed out." in page.content(), "signed out")
        verifier, challenge = pkce()
        page.goto(authorize_url(SPA, SPA_REDIRECT, challenge, prompt="none"))
        check(callbacks.last()["error"] == ["login_required"], "no session after signing out")
        browser.close()
    print(f"{checks} checks passed")


if __name__ == "__main__":
    main()
