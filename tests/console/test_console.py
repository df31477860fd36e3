"""The admin console in a real browser: headless Chromium (the Debian packages) driven by
Selenium through the system chromedriver, against a live gatehouse server.

Run by tests/console/run.sh, which starts the server and sets:
  GATEHOUSE_URL            the server's base URL
  GATEHOUSE_ADMIN_PASSWORD the bootstrap administrator's password
  CONSOLE_SCREENSHOTS      where the screenshots go (docs/console with --screenshots)

The tests run in order (each builds on the state the previous ones left) and stop at
the first failure. After every step the browser's console log is read: any entry fails
the test, except the network errors a step expects (a 400 for a bad ZenQL query, a
refused sign-in), which Chromium logs as "Failed to load resource" lines.
"""

import json
import os
import re
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything.

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

URL = os.environ["GATEHOUSE_URL"].rstrip("/")
ADMIN_PASSWORD = os.environ["GATEHOUSE_ADMIN_PASSWORD"]
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDE, NARROW = (1280, 900), (390, 844)
PASSWORD = "Console-Pass-2468"


# ---- the API, for setting up and checking what the browser did ----


def parse(text, headers):
    if text and headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(text)
    return text or None


def api(method, path, body=None, token=None, form=None):
    headers = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
            return r.status, parse(text, r.headers), r.headers
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, parse(text, e.headers), e.headers


def admin_token():
    status, body, _ = api(
        "POST",
        "/authenticate/connect/token",
        form={"grant_type": "contensis_classic", "username": "admin", "password": ADMIN_PASSWORD},
    )
    assert status == 200, body
    return body["access_token"]


# ---- the browser ----


def make_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--force-device-scale-factor=1",
                f"--window-size={WIDE[0]},{WIDE[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(*WIDE)
    return driver


class Console:
    def __init__(self, driver):
        self.d = driver
        self.allowed = []  # network statuses the current step expects

    def open(self, hash_=""):
        self.d.get(f"{URL}/admin{hash_}")

    def wait(self, condition, timeout=10):
        return WebDriverWait(self.d, timeout).until(condition)

    def find(self, css, timeout=10):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def text_in(self, css, text, timeout=10):
        """Waits until some element matching `css` contains `text`."""
        def present(d):
            try:
                return any(text in e.text for e in d.find_elements(By.CSS_SELECTOR, css))
            except StaleElementReferenceException:
                return False

        try:
            self.wait(present, timeout)
        except TimeoutException:
            found = [e.text for e in self.d.find_elements(By.CSS_SELECTOR, css)]
            raise AssertionError(f"{text!r} not in {css}: {found!r}") from None

    def type(self, css, text, clear=True):
        el = self.find(css)
        if clear:
            el.clear()
        el.send_keys(text)
        return el

    def click(self, css):
        el = self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, css)))
        el.click()
        return el

    def click_text(self, text, tag="button"):
        el = self.wait(EC.element_to_be_clickable((By.XPATH, f"//{tag}[normalize-space()='{text}']")))
        el.click()
        return el

    def label_input(self, label):
        el = self.wait(EC.visibility_of_element_located(
            (By.XPATH, f"//label[normalize-space()='{label}']")))
        return self.d.find_element(By.ID, el.get_attribute("for"))

    def sign_in(self, username, password):
        self.open()
        self.type("input[name=username]", username)
        self.type("input[name=password]", password)
        self.click("form button[type=submit]")

    def wait_signed_in(self, user):
        self.text_in("header .who", user)

    def sign_out(self):
        self.click("#sign-out")
        self.find("input[name=username]")

    def console_errors(self):
        """Every console warning or error the step did not expect (Chromium's DEBUG and
        INFO entries, such as DOM recommendations, are not errors)."""
        bad = []
        for entry in self.d.get_log("browser"):
            msg = entry.get("message", "")
            if entry.get("level") in ("DEBUG", "INFO"):
                print(f"     console {entry.get('level')}: {msg[:200]}")
                continue
            m = re.search(r"status of (\d{3})", msg)
            if entry.get("source") == "network" and m and int(m.group(1)) in self.allowed:
                continue
            bad.append(f"{entry.get('level')} {entry.get('source')}: {msg}")
        return bad

    def shot(self, name, anchor=None):
        """Screenshots of the current page at both widths, scrolled to `anchor` (a CSS
        selector) when given."""
        if not SHOTS:
            return
        os.makedirs(SHOTS, exist_ok=True)
        for label, size in (("wide", WIDE), ("narrow", NARROW)):
            self.d.set_window_size(*size)
            time.sleep(0.3)
            if anchor:
                self.d.execute_script(
                    "arguments[0].scrollIntoView({block: 'start'})",
                    self.d.find_element(By.CSS_SELECTOR, anchor))
            else:
                self.d.execute_script("window.scrollTo(0, 0)")
            time.sleep(0.1)
            path = os.path.join(SHOTS, f"{name}-{label}.png")
            self.d.save_screenshot(path)
            shrink(path)
        self.d.set_window_size(*WIDE)
        time.sleep(0.2)


def shrink(path):
    """A 64-colour palette keeps a screenshot of flat UI readable at a fraction of the size."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


# ---- the tests, in order ----

STATE = {}


def test_the_console_is_served_with_a_strict_policy(c):
    status, _, headers = api("GET", "/admin")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    c.open()
    c.find("input[name=username]")
    assert c.d.title.startswith("Sign in")
    c.shot("sign-in")


def test_sign_in(c):
    c.sign_in("admin", ADMIN_PASSWORD)
    c.wait_signed_in("admin")
    STATE["signed_in_at"] = time.monotonic()
    c.text_in("main h1", "Users")
    assert "administrator" in c.find("header .who").text
    nav = c.find("header nav").text
    for item in ("Users", "Groups", "API keys", "Audit", "My profile"):
        assert item in nav, nav
    # The token is in memory only: nothing in storage, cookies or the URL.
    assert c.d.execute_script("return localStorage.length + sessionStorage.length") == 0
    assert c.d.get_cookies() == []
    assert "token" not in c.d.current_url.lower()


def test_create_a_user(c):
    c.open("#/users")
    c.click("#new-user-toggle")
    c.type("#new-username", "carol")
    c.type("#new-email", "carol@example.com")
    c.type("#new-first", "Carol")
    c.type("#new-last", "Danvers")
    # The policy is checked as you type.
    c.type("#new-password", "carol")
    c.text_in(".policy", "✗ At least 8 characters")
    c.type("#new-password", PASSWORD)
    c.text_in(".policy", "✓ At least 8 characters")
    c.text_in(".policy", "✓ Three of")
    c.click("#create-user")
    c.text_in("main h1", "carol")
    c.text_in("main h1", "Active")
    STATE["carol"] = c.d.current_url.rsplit("/", 1)[1]
    status, body, _ = api("GET", "/api/security/users/carol", token=admin_token())
    assert status == 200 and body["firstName"] == "Carol", body


def create_group(c, name):
    c.open("#/groups")
    c.click("#new-group-toggle")
    c.type("#new-group-name", name)
    c.click("#create-group")
    c.text_in("main h1", name)
    return c.d.current_url.rsplit("/", 1)[1]


def test_create_two_nested_groups(c):
    STATE["outer"] = create_group(c, "Engineering")
    STATE["inner"] = create_group(c, "Platform")
    c.open(f"#/groups/{STATE['outer']}")
    c.type("#add-child", "Platform")
    c.click_text("Add child")
    c.text_in("main .status.ok", "Added Platform as a child group")
    c.text_in("table.child-groups", "Platform")
    c.text_in("figure.tree.below", "Platform")
    # A cycle is refused, with the reason.
    c.open(f"#/groups/{STATE['inner']}")
    c.text_in("ul.parents", "Engineering")
    c.text_in("figure.tree.above", "Engineering")
    c.allowed = [409]
    c.type("#add-child", "Engineering")
    c.click_text("Add child")
    c.text_in(".status.error", "may never contain itself")


def test_add_the_user_to_the_inner_group_by_email(c):
    c.open(f"#/groups/{STATE['inner']}")
    # All or nothing: one unknown name, nobody added, the name shown.
    c.allowed = [404]
    c.type("#add-members", "carol@example.com\nnobody@example.com")
    c.click("#add-members-button")
    c.text_in(".status.error", "nobody@example.com")
    status, body, _ = api("GET", f"/api/security/groups/{STATE['inner']}/users", token=admin_token())
    assert body["totalCount"] == 0, body
    c.type("#add-members", "carol@example.com")
    c.click("#add-members-button")
    c.text_in("main .status.ok", "Added carol@example.com")
    c.text_in("table.direct-members", "carol")


def test_the_outer_group_shows_the_inherited_membership(c):
    c.open(f"#/groups/{STATE['outer']}")
    c.text_in("table.inherited-members", "carol")
    c.text_in("table.direct-members", "No direct members")
    c.find("figure.tree.below ul ul")
    c.shot("group")
    c.shot("group-members", anchor="table.direct-members")
    c.shot("group-nesting", anchor="table.child-groups")
    # And the user's page names the path that grants it.
    c.open(f"#/users/{STATE['carol']}")
    c.text_in("table.direct-groups", "Platform")
    c.text_in("table.inherited-groups", "Engineering › Platform")
    c.shot("user-groups", anchor="table.direct-groups")


def test_suspend_the_user_and_see_the_badge(c):
    c.open(f"#/users/{STATE['carol']}")
    c.click("#action-suspend")
    c.text_in("main .status.ok", "Suspended carol")
    c.text_in("main h1 .badge", "Suspended")
    c.find("#action-unsuspend")
    c.shot("user")
    c.open("#/users")
    c.text_in("table.users", "Suspended")


def test_edit_the_profile_custom_properties_and_password(c):
    c.open(f"#/users/{STATE['carol']}")
    c.label_input("Time zone").send_keys("Europe/London")
    custom = c.label_input("Custom properties (JSON object)")
    custom.clear()
    custom.send_keys('{"department": "Engineering", "badge": 42}')
    c.click_text("Save profile")
    c.text_in("main .status.ok", "Profile saved")
    token = admin_token()
    _, body, _ = api("GET", "/api/security/users/carol", token=token)
    assert body["timezone"] == "Europe/London", body
    assert body["custom"] == {"department": "Engineering", "badge": 42}, body["custom"]
    # A removed key is removed (sent as null in the merge patch); bad JSON is refused here.
    custom = c.label_input("Custom properties (JSON object)")
    custom.clear()
    custom.send_keys("[1, 2")
    c.click_text("Save profile")
    c.text_in(".status.error", "must be a JSON object")
    custom.clear()
    custom.send_keys('{"badge": 43}')
    page = c.find("main h1")
    c.click_text("Save profile")
    c.wait(EC.staleness_of(page))  # the page is drawn again after the save
    c.text_in("main .status.ok", "Profile saved")
    _, body, _ = api("GET", "/api/security/users/carol", token=token)
    assert body["custom"] == {"badge": 43}, body["custom"]
    # An administrator sets a password, checked against the policy as typed.
    c.type("#set-password", "Carol-Pass-1")
    c.text_in(".policy", "✗ Does not contain the first or last name")
    c.type("#set-password", "Another-Pass-753")
    c.click_text("Set password")
    c.text_in(".status.ok", "Password set")


def test_search_with_zenql(c):
    c.open("#/users")
    c.find("table.users")
    c.type("#user-zenql", "status.suspended = true and email ~ 'carol'")
    c.click("#user-search")
    c.text_in("#user-results", "1 in all")
    rows = c.d.find_elements(By.CSS_SELECTOR, "table.users tbody tr")
    assert len(rows) == 1 and "carol" in rows[0].text, [r.text for r in rows]
    c.type("#user-zenql", "")
    c.type("#user-q", "")
    c.click("#user-search")
    c.text_in("table.users", "admin")
    c.shot("users")
    # Sorting: a header is a button; a second press reverses the order.
    header = "//th[.//button[starts-with(normalize-space(), 'Email')]]"

    def sorted_by_email(direction, first_user):
        def check(d):
            try:
                th = d.find_element(By.XPATH, header)
                row = d.find_element(By.CSS_SELECTOR, "table.users tbody tr")
                return th.get_attribute("aria-sort") == direction and row.text.startswith(first_user)
            except StaleElementReferenceException:
                return False  # the table was drawn again meanwhile
        return check

    c.d.find_element(By.XPATH, header + "//button").click()
    c.wait(sorted_by_email("ascending", "admin"))  # admin@localhost < carol@example.com
    c.d.find_element(By.XPATH, header + "//button").click()
    c.wait(sorted_by_email("descending", "carol"))


def test_find_a_locked_out_user_and_unlock_them(c):
    token = admin_token()
    status, body, _ = api(
        "POST", "/api/security/users",
        {"username": "gina", "email": "gina@example.com", "credentials": {"password": PASSWORD}},
        token=token)
    assert status == 201, body
    for _ in range(5):
        api("POST", "/authenticate/connect/token",
            form={"grant_type": "contensis_classic", "username": "gina", "password": "Wrong-Pass-1"})
    c.open("#/users")
    c.find("table.users")
    c.type("#user-zenql", "status.locked = true")
    c.click("#user-search")
    c.text_in("#user-results", "1 in all")
    c.text_in("table.users", "Locked")
    c.click_text("gina", tag="a")
    c.text_in("main h1 .badge", "Locked")
    c.click("#action-unlock")
    c.text_in("main .status.ok", "Unlocked gina")
    c.text_in("main h1 .badge", "Active")
    status, _, _ = api("POST", "/authenticate/connect/token",
                       form={"grant_type": "contensis_classic", "username": "gina", "password": PASSWORD})
    assert status == 200


def test_a_bad_zenql_query_shows_the_error_inline(c):
    c.open("#/users")
    c.find("table.users")
    c.allowed = [400]
    c.type("#user-zenql", "usernme = 'carol'")
    c.click("#user-search")
    c.text_in("#zenql-error", "position 0")
    caret = c.find("#zenql-error pre.caret")
    assert "^ here" in caret.text, caret.text
    assert c.find("#user-zenql").get_attribute("aria-invalid") == "true"
    # The error also names the server's logId.
    c.text_in(".status.error", "logId")


def test_create_an_api_key(c):
    c.open("#/keys")
    c.click("#new-key-toggle")
    c.type("#new-key-name", "deploy")
    c.type("#new-key-description", "CI deployments")
    c.click("#create-key")
    secret = c.find("#key-secret").text
    assert len(secret) >= 20, secret
    c.text_in("section.warning", "shown only this once")
    c.find("#copy-secret")
    client_id = c.find("#key-client-id").text
    status, body, _ = api(
        "POST",
        "/authenticate/connect/token",
        form={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert status == 200, body
    c.text_in("table.keys", "deploy")
    # Add the key to a group from the list.
    key_input = c.d.find_element(By.CSS_SELECTOR, "table.keys input[id^=key-]")
    key_input.send_keys("Platform")
    key_input.send_keys(Keys.ENTER)
    c.text_in("main .status.ok", "Added deploy to Platform")
    c.text_in("table.keys", "Platform")
    # Shown once: the page shows it no more.
    c.open("#/users")
    c.open("#/keys")
    c.text_in("table.keys", "deploy")
    assert not c.d.find_elements(By.ID, "key-secret")
    c.shot("api-keys")


def test_the_audit_page_and_recent_events(c):
    c.open("#/audit")
    c.text_in("table.audit", "user.suspended")
    c.type("#audit-type", "group.memberAdded")
    c.click_text("Filter")
    c.text_in("table.audit", "Platform")
    c.shot("audit")
    c.open(f"#/users/{STATE['carol']}")
    c.text_in("table.recent", "user.suspended")


def test_delete_a_user_only_after_confirming(c):
    status, body, _ = api(
        "POST", "/api/security/users", {"username": "frank", "email": "frank@example.com"},
        token=admin_token())
    assert status == 201, body
    c.open(f"#/users/{body['id']}")
    c.text_in("main h1", "frank")
    c.click("#delete-user")
    c.text_in("dialog", "Delete frank?")
    c.click_text("Cancel")
    assert not c.d.find_elements(By.CSS_SELECTOR, "dialog")
    assert api("GET", "/api/security/users/frank", token=admin_token())[0] == 200
    c.click("#delete-user")
    c.find("dialog")
    c.d.switch_to.active_element.send_keys(Keys.ESCAPE)  # Escape cancels too.
    assert not c.d.find_elements(By.CSS_SELECTOR, "dialog")
    c.click("#delete-user")
    c.find("dialog button.danger").click()
    c.text_in("main h1", "Users")
    assert api("GET", "/api/security/users/frank", token=admin_token())[0] == 404


def test_keyboard_focus_is_visible(c):
    c.open("#/users")
    c.find("table.users")
    body = c.d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    body = c.d.switch_to.active_element
    for _ in range(3):
        c.d.switch_to.active_element.send_keys(Keys.TAB)
    el = c.d.switch_to.active_element
    style = c.d.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth];", el)
    assert style[0] != "none" and style[1] != "0px", (el.tag_name, el.text, style)


def test_the_session_outlives_its_first_access_token(c):
    """run.sh gives access tokens the shortest lifetime (60 s): the console must have
    refreshed before it ran out, or the next call would be a 401 (a console error)."""
    ttl = int(os.environ.get("CONSOLE_TOKEN_TTL", "60"))
    left = STATE["signed_in_at"] + ttl + 3 - time.monotonic()
    if left > 0:
        time.sleep(left)
    c.open("#/groups")
    c.text_in("#group-results", "Engineering")
    c.click_text("Platform", tag="a")
    c.text_in("table.direct-members", "carol")


def test_sign_out_revokes_the_refresh_token(c):
    token = admin_token()
    status, before, _ = api("GET", "/api/security/audit?type=refreshToken.revoked", token=token)
    assert status == 200, before
    c.sign_out()
    c.text_in(".status.ok", "Signed out")
    status, after, _ = api("GET", "/api/security/audit?type=refreshToken.revoked", token=token)
    assert after["totalCount"] == before["totalCount"] + 1, after
    assert after["items"][0]["actor"]["name"] == "admin", after["items"][0]
    # Back on a protected page, the sign-in form is all there is.
    c.open("#/users")
    c.find("input[name=username]")


def test_a_non_admin_reaches_only_their_own_profile(c):
    token = admin_token()
    status, body, _ = api(
        "POST", "/api/security/users",
        {"username": "dave", "email": "dave@example.com", "firstName": "Dave",
         "credentials": {"password": PASSWORD}},
        token=token,
    )
    assert status == 201, body
    status, body, _ = api("PUT", "/api/security/groups/Platform/users/dave", token=token)
    assert status == 204, body
    c.sign_in("dave", PASSWORD)
    c.wait_signed_in("dave")
    c.text_in("main h1", "My profile")
    nav = c.find("header nav").text
    assert nav.strip() == "My profile", nav
    c.text_in("table.my-groups", "Platform")
    c.text_in("table.my-groups", "Engineering")
    for page in ("#/users", "#/groups", "#/keys", "#/audit", f"#/users/{STATE['carol']}"):
        c.open(page)
        c.text_in("main h1", "My profile")
        assert c.d.current_url.endswith("#/me"), c.d.current_url
        assert "carol" not in c.find("main").text
    # Change the own password, then sign in with it.
    new = "Sparrow-Pass-97531"
    c.type("#my-existing", PASSWORD)
    c.type("#my-new", new)
    c.click("#change-password")
    c.text_in("main .status.ok", "Password changed")
    c.open("#/me")
    c.text_in("main h1", "dave")
    c.sign_out()
    c.sign_in("dave", new)
    c.wait_signed_in("dave")
    c.shot("my-profile")
    c.sign_out()


def test_a_user_who_must_reset_sets_a_new_password(c):
    token = admin_token()
    status, body, _ = api(
        "POST", "/api/security/users?forcePasswordReset=true",
        {"username": "erin", "email": "erin@example.com", "credentials": {"password": PASSWORD}},
        token=token,
    )
    assert status == 201, body
    c.allowed = [400]
    c.sign_in("erin", PASSWORD)
    c.text_in(".status.error", "must be reset")
    c.click("#reset-link")
    c.text_in("main h1", "Set a new password")
    c.type("input[autocomplete=current-password]", PASSWORD)
    c.type("input[autocomplete=new-password]", "Erin-Fresh-Pass-864")
    c.click("form button[type=submit]")
    c.wait_signed_in("erin")
    c.text_in("main h1", "My profile")
    c.sign_out()


def test_a_session_ends_when_the_account_is_suspended(c):
    token = admin_token()
    c.sign_in("erin", "Erin-Fresh-Pass-864")
    c.wait_signed_in("erin")
    c.text_in("main h1", "My profile")
    status, body, _ = api("POST", "/api/security/users/erin/actions", {"type": "suspend"}, token=token)
    assert status == 204, body
    # The next call is refused (401); the refresh is refused too (400): back to sign-in.
    c.allowed = [400, 401]
    c.click_text("My profile", tag="a")  # the page one is on, read again
    c.find("input[name=username]")
    c.text_in(".status", "Your session has ended")


def test_every_page_fits_a_390_pixel_screen(c):
    c.sign_in("admin", ADMIN_PASSWORD)
    c.wait_signed_in("admin")
    c.d.set_window_size(*NARROW)
    try:
        pages = {
            "#/users": "table.users",
            f"#/users/{STATE['carol']}": "table.inherited-groups",
            f"#/groups/{STATE['outer']}": "table.inherited-members",
            "#/groups": "#group-results table",
            "#/keys": "table.keys",
            "#/audit": "table.audit",
            "#/me": "table.my-groups",
        }
        for page, ready in pages.items():
            c.open(page)
            c.find(ready)
            time.sleep(0.2)
            width = c.d.execute_script("return document.documentElement.scrollWidth")
            view = c.d.execute_script("return document.documentElement.clientWidth")
            assert width <= view, f"{page}: {width} px wide in a {view} px window"
            assert c.find("#sign-out").is_displayed()
    finally:
        c.d.set_window_size(*WIDE)


TESTS = [
    test_the_console_is_served_with_a_strict_policy,
    test_sign_in,
    test_create_a_user,
    test_create_two_nested_groups,
    test_add_the_user_to_the_inner_group_by_email,
    test_the_outer_group_shows_the_inherited_membership,
    test_suspend_the_user_and_see_the_badge,
    test_edit_the_profile_custom_properties_and_password,
    test_search_with_zenql,
    test_find_a_locked_out_user_and_unlock_them,
    test_a_bad_zenql_query_shows_the_error_inline,
    test_create_an_api_key,
    test_the_audit_page_and_recent_events,
    test_delete_a_user_only_after_confirming,
    test_keyboard_focus_is_visible,
    test_the_session_outlives_its_first_access_token,
    test_sign_out_revokes_the_refresh_token,
    test_a_non_admin_reaches_only_their_own_profile,
    test_a_user_who_must_reset_sets_a_new_password,
    test_a_session_ends_when_the_account_is_suspended,
    test_every_page_fits_a_390_pixel_screen,
]


def main():
    only = sys.argv[1:]
    driver = make_driver()
    c = Console(driver)
    failed = None
    passed = 0
    try:
        for test in TESTS:
            if only and not any(o in test.__name__ for o in only):
                continue
            c.allowed = []
            started = time.monotonic()
            try:
                test(c)
                errors = c.console_errors()
                assert not errors, "browser console errors:\n  " + "\n  ".join(errors)
            except Exception:
                failed = test.__name__
                print(f"FAIL {test.__name__}")
                traceback.print_exc()
                try:
                    print("page:", driver.current_url)
                    print(driver.find_element(By.TAG_NAME, "body").text[:2000])
                    for entry in driver.get_log("browser"):
                        print("console:", entry)
                except Exception:
                    pass
                break
            passed += 1
            print(f"ok   {test.__name__} ({time.monotonic() - started:.1f} s)")
    finally:
        driver.quit()
    print(f"{passed} passed" + (f", failed at {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
