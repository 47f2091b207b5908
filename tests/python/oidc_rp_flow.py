"""An example relying party against tessera: examples/oidc-flask-rp (authlib's OpenID
Connect client in Flask) with RP=flask, examples/oidc-node-rp (node's openid-client) with
RP=node (NODE names the binary). With
headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) as the user's browser:
sign-in through the hosted pages, the ID token validated by authlib (nonce, at_hash),
userinfo, refresh, RP-initiated logout, and refresh refused afterwards.

Environment: TESSERA_URL, CHROMIUM, RP, CLIENT_ID, RP_PORT, USERNAME, PASSWORD.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples")
if os.environ["RP"] == "flask":
    COMMAND = [sys.executable, os.path.join(EXAMPLES, "oidc-flask-rp", "app.py")]
else:
    # The example resolves openid-client from its own node_modules: the tests' install.
    modules = os.path.join(EXAMPLES, "oidc-node-rp", "node_modules")
    if not os.path.exists(modules):
        os.symlink(os.path.join("..", "..", "tests", "node", "node_modules"), modules)
    COMMAND = [os.environ.get("NODE", "node"), os.path.join(EXAMPLES, "oidc-node-rp", "app.mjs")]
PORT = os.environ["RP_PORT"]
RP = f"http://127.0.0.1:{PORT}"


checks = 0


def check(condition, message):
    global checks
    if not condition:
        print("FAILED:", message)
        sys.exit(1)
    checks += 1


def body(page):
    return json.loads(page.inner_text("body"))


rp = subprocess.Popen(
    COMMAND,
    env={**os.environ, "TESSERA_ISSUER": os.environ["TESSERA_URL"], "PORT": PORT},
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(RP + "/signed-out")
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], headless=True)
        page = browser.new_page()
        page.goto(RP + "/login")
        check("/login" in page.url and page.url.startswith(os.environ["TESSERA_URL"]), page.url)
        page.fill("#username", os.environ["USERNAME"])
        page.fill("#password", os.environ["PASSWORD"])
        page.click("button[type=submit]")
        page.wait_for_url(RP + "/callback*")
        signed_in = body(page)
        claims = signed_in["id_token"]
        check(claims["aud"] == os.environ["CLIENT_ID"], f"aud: {claims}")
        check(claims["preferred_username"] == os.environ["USERNAME"], f"profile: {claims}")
        check("nonce" in claims and "at_hash" in claims, f"nonce and at_hash: {claims}")
        check(claims["sid"] and claims["auth_time"], f"sid and auth_time: {claims}")
        check(signed_in["userinfo"]["sub"] == claims["sub"], f"userinfo: {signed_in}")
        check(signed_in["userinfo"]["email_verified"] is False, f"email scope: {signed_in}")

        page.goto(RP + "/refresh")
        refreshed = body(page)["id_token"]
        check(refreshed["sub"] == claims["sub"], f"refresh sub: {refreshed}")
        check(refreshed["auth_time"] == claims["auth_time"], f"refresh auth_time: {refreshed}")
        check("nonce" not in refreshed, f"refresh nonce: {refreshed}")

        page.goto(RP + "/logout")
        page.wait_for_url(RP + "/signed-out*")
        check(body(page) == {"signed_out": True}, page.content())
        page.goto(RP + "/refresh")
        check("error" in body(page), "refresh after logout must fail")
        page.goto(RP + "/login")
        check(page.url.startswith(os.environ["TESSERA_URL"] + "/login"), "signed in again needs the password")
        browser.close()
    print(f"oidc_rp_flow ({os.environ['RP']}): {checks} checks passed")
finally:
    rp.terminate()
    rp.wait(10)
