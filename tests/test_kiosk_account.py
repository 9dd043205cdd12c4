"""The waiting room's device account (role ``kiosk``): the tablet where walk-in customers take a
number, and the wall screen. It opens the kiosk, the slip of a number and its branch's display,
and nothing else: no ticket, no customer, no queue controls, no API, no administration."""
import re
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import func, select

from servicedesk.auth import API_PERMISSIONS, PERMISSIONS
from servicedesk.extensions import db
from servicedesk.models import ApiToken, Branch, User, Visit, utcnow
from servicedesk.services import reception as reception_service
from servicedesk.services.people import issue_token, user_for_token
from servicedesk.services.tickets import default_branch

from .conftest import PASSWORD, add_user
from .test_admin import Browser, html

KIOSK_PAGES = {"visits.kiosk", "visits.slip", "visits.display"}


@pytest.fixture
def kiosk_user(app):
    return add_user("lobby", "kiosk")


@pytest.fixture
def kiosk(app, kiosk_user):
    browser = Browser(app, lang="fa")
    resp = browser.login("lobby")
    assert resp.status_code == 302
    browser.landed = resp.location
    return browser


@pytest.fixture
def admin(app, users):
    browser = Browser(app)
    assert browser.login(users["admin"].username).status_code == 302
    return browser


def cookie_of(resp, name: str):
    """The Set-Cookie header of cookie ``name``, or None."""
    return next((h for h in resp.headers.getlist("Set-Cookie") if h.startswith(name + "=")),
                None)


def expires(header: str):
    return parsedate_to_datetime(re.search(r"Expires=([^;]+)", header)[1])


# --- the matrix ------------------------------------------------------------------------------

def test_the_kiosk_role_holds_the_waiting_rooms_pages_and_nothing_else():
    held = {action for action, roles in PERMISSIONS.items() if "kiosk" in roles}
    assert held == KIOSK_PAGES
    assert not {API_PERMISSIONS[e] for e in API_PERMISSIONS} & held  # no API route at all
    # the staff who had the kiosk and the display keep them
    assert {"reception", "manager"} <= PERMISSIONS["visits.kiosk"]
    assert {"reception", "technician", "manager", "admin"} <= PERMISSIONS["visits.display"]


# --- what it does ----------------------------------------------------------------------------

def test_a_kiosk_logs_in_to_the_kiosk_takes_a_number_and_gets_its_slip(app, kiosk):
    assert kiosk.landed == "/kiosk"
    page = html(kiosk.get("/kiosk"))
    assert 'name="service"' in page and "data-idle-reload" in page
    assert "/tickets/" not in page and "/desk" not in page  # no staff menu on the kiosk
    resp = kiosk.post("/kiosk", {"service": "repair", "phone": "09121234567"})
    assert resp.status_code == 302
    visit = db.session.scalar(select(Visit).where(Visit.label == "R-001"))
    assert resp.location == f"/visits/{visit.id}/slip?print=1&back=kiosk&lang=fa"
    slip = html(kiosk.get(resp.location))
    assert "R-۰۰۱" in slip and "data-autoprint" in slip
    assert 'data-return-to="/kiosk?lang=fa"' in slip  # and back to the kiosk by itself
    assert "0912" not in slip and "۰۹۱۲" not in slip  # the number left is on no slip
    assert kiosk.get("/kiosk?lang=fa").status_code == 200
    assert kiosk.get(f"/visits/{visit.id}/slip?paper=58&back=kiosk").status_code == 200


def test_a_kiosk_shows_its_own_branchs_wall_display(app, kiosk_user, users):
    north = Branch(name="North", code="N")
    db.session.add(north)
    db.session.commit()
    kiosk_user.branch_id = north.id
    db.session.commit()
    here = reception_service.issue_number(north, "repair")
    there = reception_service.issue_number(default_branch(), "pickup")
    reception_service.call(here.id, "3", users["manager"])
    reception_service.call(there.id, "7", users["manager"])
    screen = Browser(app)
    assert screen.login("lobby").status_code == 302
    for url in ("/display", "/display/board"):
        board = html(screen.get(url))
        assert "R-001" in board, url
        assert "P-001" not in board, url
    # a slip: its own branch's numbers only
    assert screen.get(f"/visits/{here.id}/slip").status_code == 200
    assert screen.get(f"/visits/{there.id}/slip").status_code == 404


REFUSED_PAGES = ("/", "/tickets/", "/desk", "/desk/customer?customer_phone=09121234567",
                 "/desk/delivery", "/desk/takings", "/desk/takings/slip", "/desk/intake",
                 "/desk/find?q=R", "/queue", "/queue/board", "/reports/", "/admin/",
                 "/admin/users", "/admin/roles", "/workbench/")


def test_a_kiosk_is_refused_every_staff_page(app, kiosk, make_ticket):
    ticket = make_ticket("ready")
    visit = reception_service.issue_number(default_branch(), "repair")
    for url in (*REFUSED_PAGES, f"/tickets/{ticket.id}", f"/tickets/{ticket.id}/receipt",
                f"/desk/visits/{visit.id}"):
        resp = kiosk.get(url)
        assert resp.status_code == 403, (url, resp.status_code, resp.location)
        assert ticket.customer.name not in html(resp)
    for url, data in (("/queue/next", {"counter": "1"}), ("/queue/issue", {"service": "repair"}),
                      (f"/queue/{visit.id}/call", {"counter": "1"}),
                      (f"/desk/delivery/{ticket.id}", {"amount_paid": "0"})):
        assert kiosk.post(url, data).status_code == 403, url
    # the refusal's page offers the way back to the kiosk, and no staff page
    refused = html(kiosk.get("/tickets/"))
    assert 'href="/kiosk"' in refused and 'href="/display"' in refused
    assert 'href="/tickets/"' not in refused and 'href="/queue"' not in refused


def test_a_kiosk_gets_nothing_from_the_api_even_with_a_token(app, kiosk_user, make_ticket):
    """However it came by a token (none is issued to it: below), the API refuses it, and so do
    the staff pages the token would open."""
    ticket = make_ticket("intake")
    token = issue_token(kiosk_user, "left over")
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    for method, url in (("GET", "/api/v1/tickets"), ("GET", f"/api/v1/tickets/{ticket.id}"),
                        ("POST", "/api/v1/visits"), ("POST", "/api/v1/visits/next"),
                        ("POST", "/api/v1/tickets"),
                        ("POST", f"/api/v1/tickets/{ticket.id}/events"),
                        ("GET", "/api/v1/reports/takings"), ("GET", "/api/v1/reports/dashboard")):
        resp = client.open(url, method=method, headers=bearer,
                           json={"service": "repair", "counter": "1"} if method == "POST"
                           else None)
        assert resp.status_code == 403, (method, url, resp.status_code)
        assert resp.get_json()["error"]
    for url in ("/tickets/", f"/tickets/{ticket.id}", "/desk/customer?customer_phone=0912"):
        assert client.get(url, headers=bearer).status_code == 403, url


# --- its account -----------------------------------------------------------------------------

def test_the_admin_creates_a_kiosk_account_and_cannot_give_it_an_api_token(app, admin, users):
    page = html(admin.get("/admin/users/new?lang=en"))
    assert re.search(r'<option value="kiosk">Kiosk / wall display</option>', page)
    resp = admin.post("/admin/users/new", {"username": "tablet", "role": "kiosk",
                                           "branch_id": default_branch().id, "language": "",
                                           "password": "a long tablet password"})
    assert resp.status_code == 302
    tablet = db.session.scalar(select(User).where(User.username == "tablet"))
    assert tablet.role == "kiosk"
    assert "Kiosk / wall display" in html(admin.get("/admin/users?lang=en"))
    page = html(admin.get(f"/admin/users/{tablet.id}?lang=en"))
    assert "data-token-new" not in page
    admin.post(f"/admin/users/{tablet.id}/tokens", {"name": "Try anyway"})
    assert db.session.scalar(select(func.count(ApiToken.id))
                             .where(ApiToken.user_id == tablet.id)) == 0
    # the role matrix shows it, refused everywhere but its pages
    roles = html(admin.get("/admin/roles?lang=en"))
    cells = re.findall(r'data-role="kiosk" data-allowed="yes"', roles)
    assert len(cells) == len(KIOSK_PAGES)


def test_a_receptionist_made_a_kiosk_loses_tokens_and_sessions(app, admin, users):
    reception = users["reception"]
    kept = issue_token(reception, "till")
    desk = Browser(app)
    assert desk.login(reception.username).status_code == 302
    admin.post(f"/admin/users/{reception.id}", {"full_name": "", "role": "kiosk",
                                                 "branch_id": 0, "language": ""})
    db.session.expire_all()
    assert db.session.get(User, reception.id).role == "kiosk"
    assert user_for_token(kept) is None
    resp = desk.get("/desk")
    assert resp.status_code == 302 and "/login" in resp.location


def test_create_user_makes_a_kiosk_and_api_token_refuses_it(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "kiosk1", "--role", "kiosk", "--password",
                                 PASSWORD])
    assert result.exit_code == 0, result.output
    assert "حساب kiosk1 (" in result.output and "ساخته شد" in result.output
    assert db.session.scalar(select(User.role).where(User.username == "kiosk1")) == "kiosk"
    result = runner.invoke(args=["api-token", "kiosk1"])
    assert result.exit_code != 0 and "حساب کیوسک است" in result.output
    assert db.session.scalar(select(func.count(ApiToken.id))) == 0
    browser = Browser(app)
    assert browser.login("kiosk1").location == "/kiosk"


# --- a long-lived session on the tablet ------------------------------------------------------

def test_a_kiosk_stays_logged_in_through_the_night_without_ticking_remember_me(app,
                                                                               kiosk_user):
    tablet = Browser(app)
    resp = tablet.login("lobby")  # the box left unticked
    remember = cookie_of(resp, "remember_token")
    assert remember is not None, "a kiosk is always remembered"
    days = app.config["KIOSK_REMEMBER_DAYS"]
    assert days > 14  # longer than staff's: nobody at the tablet knows its password
    assert abs(expires(remember) - (utcnow() + timedelta(days=days))) < timedelta(minutes=5)
    # the night: the session cookie (12 hours) is gone, the remember-me cookie is left
    morning = Browser(app)
    morning.client.set_cookie("remember_token", tablet.client.get_cookie("remember_token").value)
    for _ in range(3):  # and stays, past the first page
        assert morning.get("/kiosk").status_code == 200
    assert morning.post("/kiosk", {"service": "repair"}).status_code == 302
    # staff who leave the box unticked get no such cookie
    add_user("desk2", "reception")
    assert cookie_of(Browser(app).login("desk2"), "remember_token") is None


def test_a_remembered_kiosk_still_cannot_reach_the_fresh_login_pages(app, kiosk_user):
    tablet = Browser(app)
    tablet.login("lobby")
    later = Browser(app)
    later.client.set_cookie("remember_token", tablet.client.get_cookie("remember_token").value)
    assert later.get("/kiosk").status_code == 200
    for url in ("/admin/users", "/admin/settings", "/admin/branches", "/admin/audit"):
        assert later.get(url).status_code == 403, url
    # nor by typing its password again: the role is refused, not the freshness
    assert later.post("/login", {"username": "lobby", "password": PASSWORD}).status_code == 302
    assert later.get("/admin/users").status_code == 403


def test_a_customer_at_the_tablet_finds_no_log_out(app, users):
    """Logging the kiosk account out logs the wall display out too: no customer may do it from
    the tablet. A staff address opened there leads back to the kiosk."""
    from servicedesk.services.people import create_user

    from .conftest import PASSWORD
    from .test_admin import Browser, html
    create_user("lobby1", "kiosk", PASSWORD, branch=users["reception"].branch)
    tablet = Browser(app)
    assert tablet.login("lobby1", PASSWORD).status_code == 302
    for url in ("/kiosk", "/", "/tickets/"):
        page = html(tablet.get(url))
        assert "/logout" not in page, url
    assert 'href="/kiosk"' in html(tablet.get("/")) and "data-back-to-kiosk" in html(
        tablet.get("/"))


def test_a_customer_at_the_tablet_does_not_switch_every_screens_language(app, users):
    """The kiosk account stands on the tablet and the wall screen: a customer switching the
    language switches their own screen, not the account (the wall's next login stays in the
    shop's language); an English speaker's slip is English whatever the account says."""
    from servicedesk.models import User as UserModel
    from servicedesk.services.people import create_user

    from .conftest import PASSWORD
    from .test_admin import Browser, html
    kiosk = create_user("lobby2", "kiosk", PASSWORD, branch=users["reception"].branch)
    kiosk.language = "fa"
    db.session.commit()
    tablet = Browser(app)
    assert tablet.login("lobby2", PASSWORD).status_code == 302
    tablet.get("/kiosk")
    tablet._token = None
    tablet.post("/language", {"lang": "en", "next": "/kiosk"})
    db.session.expire_all()
    assert db.session.get(UserModel, kiosk.id).language == "fa"
    resp = tablet.post("/kiosk?lang=en", {"service": "repair"})
    assert resp.status_code == 302 and "lang=en" in resp.location
    assert '<html lang="en"' in html(tablet.get(resp.location))
    wall = Browser(app, lang="fa")
    assert wall.login("lobby2", PASSWORD).status_code == 302
    assert '<html lang="fa"' in html(wall.get("/display"))
