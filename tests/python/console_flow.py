"""The admin console in headless Chromium driven by Playwright (Debian's /usr/bin/chromium:
never `playwright install`): an admin with TOTP signs in through the code flow, finds a
user, ends one of their sessions and sees its refresh token refused at the token endpoint,
creates a client and uses the shown secret for client_credentials, rotates the keys and sees
the JWKS change, retires a key after the confirmation, filters the audit log; a demoted
admin's console stops working at once. Screenshots of every view go to SCREENSHOTS.

Environment: TESSERA_URL, CHROMIUM, ADMIN, PASSWORD, TOTP_SECRET, DEPUTY, BOB, BOB_SID,
BOB_REFRESH (the session to end), BOB_OTHER_REFRESH (one that must keep working),
SCREENSHOTS (a folder).
"""

import base64
import hashlib
import hmac
import os
import struct
import sys
import time

import requests
from playwright.sync_api import sync_playwright

BASE = os.environ["TESSERA_URL"]
ADMIN, PASSWORD, TOTP_SECRET = os.environ["ADMIN"], os.environ["PASSWORD"], os.environ["TOTP_SECRET"]
DEPUTY, BOB, BOB_SID = os.environ["DEPUTY"], os.environ["BOB"], os.environ["BOB_SID"]
BOB_REFRESH, BOB_OTHER_REFRESH = os.environ["BOB_REFRESH"], os.environ["BOB_OTHER_REFRESH"]
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


def totp(secret, step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1_000_000)


def shot(page, name, phone=False):
    page.screenshot(path=os.path.join(SHOTS, f"{name}-desktop.png"), full_page=True)
    if phone:
        page.set_viewport_size(PHONE)
        page.screenshot(path=os.path.join(SHOTS, f"{name}-phone.png"), full_page=True)
        page.set_viewport_size(DESKTOP)


def jwks_kids():
    return {k["kid"] for k in requests.get(BASE + "/.well-known/jwks.json", timeout=10).json()["keys"]}


def refresh(token):
    return requests.post(BASE + "/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": token,
    }, timeout=10)


def sign_in(page, username, password):
    page.goto(BASE + "/console")
    check(page.url.startswith(BASE + "/login"), f"the console sends to the sign-in page: {page.url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], args=["--no-sandbox"])
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()

        # Sign-in through the code flow, with the TOTP step.
        sign_in(page, ADMIN, PASSWORD)
        check(page.get_by_label("Authentication code").count() == 1, "the admin has a code step")
        for attempt in range(3):
            page.get_by_label("Authentication code").fill(totp(TOTP_SECRET, int(time.time()) // 30))
            page.get_by_role("button", name="Verify").click()
            if page.url.rstrip("/") == BASE + "/console":
                break
            time.sleep(30 - time.time() % 30 + 1)
        check(page.url.rstrip("/") == BASE + "/console", f"signed in to the console: {page.url}")
        check(page.get_by_role("heading", name="Overview").count() == 1, "the overview")
        check("live sessions" in page.content(), "overview figures")
        shot(page, "console-overview", phone=True)

        # Keyboard: the first Tab reaches the skip link, and Enter follows it.
        page.keyboard.press("Tab")
        check(page.evaluate("document.activeElement.textContent") == "Skip to content", "skip link first")

        # Find bob, end one of his sessions.
        page.get_by_role("link", name="Users", exact=True).click()
        page.get_by_label("Search users").fill(BOB)
        page.get_by_label("Search users").press("Enter")
        check(page.get_by_role("link", name=BOB, exact=True).count() == 1, "bob found")
        shot(page, "console-users", phone=True)
        page.get_by_role("link", name=BOB, exact=True).click()
        check(BOB_SID in page.content(), "bob's session listed")
        shot(page, "console-user", phone=True)
        page.get_by_role("button", name=f"End session {BOB_SID}").click()
        check("End this session?" in page.content(), "asked to confirm")
        shot(page, "console-confirm", phone=True)
        page.get_by_role("button", name="End session", exact=True).click()
        check("The session has ended" in page.content(), "notice after ending the session")
        check(BOB_SID not in page.content(), "the session is gone from the list")
        refused = refresh(BOB_REFRESH)
        check(refused.status_code == 400 and refused.json()["error"] == "invalid_grant",
              f"the ended session's refresh token is refused: {refused.text}")
        check(refresh(BOB_OTHER_REFRESH).status_code == 200, "bob's other session still works")

        # A client, its secret shown once, used for client_credentials.
        page.get_by_role("link", name="Clients", exact=True).click()
        check("console" in page.content(), "the built-in console client is listed")
        page.get_by_label("Client id").fill("reports")
        page.get_by_label("client_credentials").check()
        page.get_by_label("Scopes").fill("read")
        page.get_by_role("button", name="Create client").click()
        secret = page.get_by_label("Client secret").input_value()
        check(len(secret) >= 43, "a 256-bit secret is shown")
        shot(page, "console-client-secret", phone=True)
        issued = requests.post(BASE + "/oauth/token", data={"grant_type": "client_credentials"},
                               auth=("reports", secret), timeout=10)
        check(issued.status_code == 200 and "access_token" in issued.json(), f"client_credentials: {issued.text}")
        page.get_by_role("link", name="Back to the clients").click()
        check(secret not in page.content(), "the secret is not shown again")
        shot(page, "console-clients", phone=True)

        # Keys: rotate, and the JWKS changes; retire the previous key after the warning.
        before = jwks_kids()
        page.get_by_role("link", name="Keys", exact=True).click()
        shot(page, "console-keys", phone=True)
        old_active = page.locator(".key.active code").first.text_content()
        page.get_by_role("button", name="Rotate", exact=True).click()
        check("Rotated" in page.content(), "rotated")
        after = jwks_kids()
        check(after != before and old_active in after, f"the JWKS changed: {before} -> {after}")
        page.get_by_role("button", name=f"Retire key {old_active}").click()
        check("are refused from now on" in page.content(), "the confirmation names the consequence")
        shot(page, "console-retire", phone=True)
        page.get_by_role("button", name="Retire key", exact=True).click()
        check("The key is retired" in page.content(), "retired: " + page.inner_text("main"))
        check(old_active not in jwks_kids(), "the retired key left the JWKS")

        # Audit: filter by type.
        page.get_by_role("link", name="Audit log", exact=True).click()
        page.get_by_label("Event type").select_option("session_revoked")
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("tbody tr")
        check(rows.count() >= 1, "session_revoked events")
        check(all("session_revoked" in rows.nth(i).text_content() for i in range(rows.count())), "only that type")
        page.get_by_label("Event type").select_option("")
        page.get_by_role("button", name="Filter").click()
        shot(page, "console-audit", phone=True)

        # A second admin signs in; demoted by the first, their console stops at once.
        other = browser.new_context(viewport=DESKTOP).new_page()
        sign_in(other, DEPUTY, PASSWORD)
        check(other.url.rstrip("/") == BASE + "/console", "the deputy is in")
        page.get_by_role("link", name="Users", exact=True).click()
        page.get_by_label("Search users").fill(DEPUTY)
        page.get_by_label("Search users").press("Enter")
        page.get_by_role("link", name=DEPUTY, exact=True).click()
        page.get_by_role("textbox", name="Roles").fill("")
        page.get_by_role("button", name="Save roles").click()
        check("Saved." in page.content(), "roles saved")
        response = other.reload()
        check(response.status == 403, f"the demoted admin gets 403 at once: {response.status}")
        check("admin role" in other.content(), "the 403 page says why")
        shot(other, "console-forbidden", phone=True)

        # Sign out.
        page.get_by_role("button", name="Sign out").click()
        check("You have signed out." in page.content(), "signed out")
        page.goto(BASE + "/console")
        check(page.url.startswith(BASE + "/login"), "signing in again is needed")
        browser.close()
    print(f"{checks} checks passed")


if __name__ == "__main__":
    main()
