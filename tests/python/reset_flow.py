"""The password-reset pages in headless Chromium driven by Playwright (Debian's
/usr/bin/chromium, never `playwright install`): the sign-in page's "forgot password" link,
the request form, the page a mailed reset link opens (a weak password refused on the page,
then a good one accepted), and the same link refused once used.

Environment: TESSERA_URL, CHROMIUM, RESET_LINK (a mailed link, on TESSERA_URL), USERNAME,
NEW_PASSWORD, SCREENSHOTS (a folder).
"""

import os
import sys

from playwright.sync_api import sync_playwright

BASE = os.environ["TESSERA_URL"]
LINK = os.environ["RESET_LINK"]
USER, NEW_PASSWORD = os.environ["USERNAME"], os.environ["NEW_PASSWORD"]
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


def shot(page, name):
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], args=["--no-sandbox"])
    page = browser.new_page(viewport=DESKTOP)

    page.goto(BASE + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    check(page.url == BASE + "/password/forgot", f"the link leads to the form: {page.url}")
    check(page.locator("input[name=csrf]").count() == 1, "the request form carries a CSRF token")
    shot(page, "forgot")
    page.get_by_label("Username or email").fill("someone-unknown")
    page.get_by_role("button", name="Send reset link").click()
    check("is on its way" in page.content(), "the request form answers the same for anyone")

    response = page.goto(LINK)
    check(response.status == 200, f"the reset page opens: {response.status}")
    check(USER in page.content(), "the page names the account")
    check(page.locator("input[name=csrf]").count() == 1, "the reset form carries a CSRF token")
    shot(page, "reset")
    page.get_by_label("New password").fill("password")
    page.get_by_role("button", name="Set new password").click()
    check(page.get_by_role("alert").count() == 1, "a weak password is refused on the page")
    shot(page, "reset-error")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    check("Password changed" in page.content(), "a good password is accepted")
    shot(page, "reset-done")

    response = page.goto(LINK)
    check(response.status == 400, f"a used link is refused: {response.status}")
    check("does not work" in page.content(), "with a clear page")
    browser.close()

print(f"{checks} checks passed")
