"""Administration pages: every action works, is audited with before and after, and whatever staff
type is escaped on every page that shows it."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from servicedesk import audit, settings
from servicedesk.extensions import db
from servicedesk.lifecycle import EVENTS, Actor
from servicedesk.models import Branch, Notification, SmsTemplate, Ticket, User, utcnow
from servicedesk.models.admin import AuditLog, Setting
from servicedesk.services import admin as admin_service
from servicedesk.services import tickets as ticket_service
from servicedesk.services.people import authenticate

from .conftest import INTAKE, PASSWORD, add_user

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


class Browser:
    """A staff member's browser: cookies kept, CSRF tokens read from the pages like a real form.

    Each request runs in its own app context, as in production, so nothing (the logged-in user,
    the database session) carries over from one request to the next inside the test process.
    """

    def __init__(self, app, lang="en"):
        self.app = app
        self.client = app.test_client()
        self.lang = lang  # the language picked with the switcher (kept across the login)
        self._token = None

    def open(self, method, url, **kw):
        with self.app.app_context():
            return self.client.open(url, method=method, **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def token(self, page=None):
        page = page or f"/login?lang={self.lang}"
        if self._token is None:
            html = self.get(page, follow_redirects=True).get_data(as_text=True)
            match = CSRF_RE.search(html)
            assert match, f"no CSRF token on {page}"
            self._token = match.group(1)
        return self._token

    def post(self, url, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token())
        return self.open("POST", url, data=data, **kw)

    def login(self, username, password=PASSWORD, remember=False):
        self._token = None
        data = {"username": username, "password": password}
        if remember:
            data["remember"] = "y"
        resp = self.post("/login", data)
        self._token = None  # a login starts a new session, with a new CSRF token
        return resp


def html(resp) -> str:
    return resp.get_data(as_text=True)


def rows(action):
    db.session.expire_all()
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action)
                              .order_by(AuditLog.id)).all()


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def admin(app, users):
    browser = Browser(app)
    assert browser.login(users["admin"].username).status_code == 302
    return browser


@pytest.fixture
def manager(app, users):
    browser = Browser(app)
    assert browser.login(users["manager"].username).status_code == 302
    return browser


def branch_id():
    return ticket_service.default_branch().id


# --- users -----------------------------------------------------------------------------------

def test_admin_creates_a_user_with_a_generated_password_shown_once(app, admin, users):
    resp = admin.post("/admin/users/new", {"username": "sara", "full_name": "Sara Ahmadi",
                                           "role": "reception", "branch_id": branch_id(),
                                           "language": "fa", "password": ""})
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    password = re.search(r'<code class="ltr" dir="ltr">([^<]+)</code>', html(resp)).group(1)
    user = db.session.scalar(select(User).where(User.username == "sara"))
    assert (user.role, user.full_name, user.branch_id, user.language, user.active) == \
        ("reception", "Sara Ahmadi", branch_id(), "fa", True)
    assert password not in user.password_hash
    assert Browser(app).login("sara", password).status_code == 302

    [row] = rows("user.create")
    assert row.actor_id == users["admin"].id and row.actor_name == users["admin"].username
    assert (row.object_type, row.object_id) == ("users", str(user.id))
    assert row.value_from is None
    assert row.value_to == {"username": "sara", "full_name": "Sara Ahmadi", "role": "reception",
                            "branch_id": branch_id(), "language": "fa", "active": True}
    assert row.ip == "127.0.0.1"
    assert password not in str(row.value_to)


def test_creating_a_user_with_a_taken_name_or_bad_role_writes_nothing(admin, users):
    before = count(User), count(AuditLog)
    taken = admin.post("/admin/users/new", {"username": users["technician"].username,
                                            "role": "technician", "branch_id": 0,
                                            "language": "", "password": "long enough pw"})
    assert taken.status_code == 422 and "already exists" in html(taken)
    # the same name in other letters' case would be two accounts staff mix up
    upper = admin.post("/admin/users/new?lang=en", {
        "username": users["technician"].username.upper(), "role": "technician",
        "branch_id": 0, "language": "", "password": "long enough pw"})
    assert upper.status_code == 422
    assert f"already exists: {users['technician'].username}." in html(upper)
    assert html(upper).count("already exists") == 1  # said once, at the field
    bad_role = admin.post("/admin/users/new", {"username": "x1", "role": "owner", "branch_id": 0,
                                               "language": "", "password": "long enough pw"})
    assert bad_role.status_code == 422
    short = admin.post("/admin/users/new", {"username": "x2", "role": "technician",
                                            "branch_id": 0, "language": "", "password": "short"})
    assert short.status_code == 422
    # WTForms' own message, in Persian, with Persian digits like the rest of the page
    short = admin.post("/admin/users/new?lang=fa", {"username": "x2", "role": "technician",
                                                    "branch_id": 0, "language": "",
                                                    "password": "short"})
    problem = re.search(r'class="invalid-feedback d-block" id="[^"]*">([^<]*)<', html(short))[1]
    assert "۸" in problem and not re.search("[0-9]", problem), problem
    db.session.expire_all()
    assert (count(User), count(AuditLog)) == before


def test_a_message_quoting_a_typed_user_name_keeps_its_digits(admin, users):
    """Persian digits are for the page's own numbers: "tech2" is a user name, as typed."""
    add_user("tech2", "technician")
    taken = admin.post("/admin/users/new?lang=fa", {"username": "tech2", "role": "technician",
                                                    "branch_id": 0, "language": "",
                                                    "password": "long enough pw"})
    assert taken.status_code == 422
    assert "tech2" in html(taken) and "tech۲" not in html(taken)


def test_role_branch_and_name_changes_are_audited_with_before_and_after(admin, users):
    other = Branch(name="Tajrish", code="T")
    db.session.add(other)
    db.session.commit()
    tech = users["technician"]
    old_token = tech.session_token
    resp = admin.post(f"/admin/users/{tech.id}", {"full_name": "Reza", "role": "manager",
                                                  "branch_id": other.id, "language": "en"})
    assert resp.status_code == 302
    db.session.expire_all()
    tech = db.session.get(User, tech.id)
    assert (tech.role, tech.branch_id, tech.full_name, tech.language) == \
        ("manager", other.id, "Reza", "en")
    assert tech.session_token != old_token  # a new role: sessions with the old one end
    [row] = rows("user.update")
    assert row.value_from == {"full_name": "", "role": "technician", "branch_id": branch_id(),
                              "language": None}
    assert row.value_to == {"full_name": "Reza", "role": "manager", "branch_id": other.id,
                            "language": "en"}
    assert "session_token" not in row.value_to


def test_deactivation_ends_sessions_revokes_tokens_and_is_audited(app, admin, users):
    from servicedesk.services.people import issue_token, user_for_token
    reception = users["reception"]
    token = issue_token(reception)
    old_session = reception.session_token
    resp = admin.post(f"/admin/users/{reception.id}/deactivate")
    assert resp.status_code == 302
    db.session.expire_all()
    reception = db.session.get(User, reception.id)
    assert reception.active is False and reception.session_token != old_session
    assert user_for_token(token) is None
    [row] = rows("user.deactivate")
    assert row.value_from == {"active": True}
    assert row.value_to == {"active": False, "revoked_api_keys": 1}
    assert authenticate(reception.username, PASSWORD) == (None, "invalid")

    assert admin.post(f"/admin/users/{reception.id}/activate").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, reception.id).active is True
    assert user_for_token(token) is None  # reactivation does not bring old tokens back
    [row] = rows("user.activate")
    assert (row.value_from, row.value_to) == ({"active": False}, {"active": True})


def test_the_manager_adds_a_receptionist_and_resets_a_lost_password(app, manager, users):
    """DESIGN section 1: users are the manager's too; a new receptionist and a technician's
    lost password need no administrator."""
    resp = manager.post("/admin/users/new", {"username": "neda", "full_name": "Neda",
                                             "role": "reception", "branch_id": branch_id(),
                                             "language": "fa", "password": ""})
    assert resp.status_code == 200
    password = re.search(r'<code class="ltr" dir="ltr">([^<]+)</code>', html(resp)).group(1)
    assert Browser(app).login("neda", password).status_code == 302
    [row] = rows("user.create")
    assert row.actor_id == users["manager"].id

    tech = users["technician"]
    at_bench = Browser(app)
    at_bench.login(tech.username)
    assert at_bench.get("/workbench/").status_code == 200
    resp = manager.post(f"/admin/users/{tech.id}/password", {"password": "a new one 2026"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert authenticate(tech.username, PASSWORD) == (None, "invalid")
    assert authenticate(tech.username, "a new one 2026")[0] is not None
    # the old session (a phone left logged in) is over
    assert "/login" in at_bench.get("/workbench/").headers.get("Location", "")


def test_a_very_common_password_is_refused_on_the_users_page_reset_and_own_change(
        app, manager, users):
    """Wherever a password is set, one of the most common is refused, saying why."""
    why = "most common"
    resp = manager.post("/admin/users/new?lang=en", {
        "username": "neda", "full_name": "Neda", "role": "reception",
        "branch_id": branch_id(), "language": "fa", "password": "password1"})
    assert resp.status_code == 422 and why in html(resp)
    assert count(User) == len(users)
    tech = users["technician"]
    resp = manager.post(f"/admin/users/{tech.id}/password?lang=en", {"password": "1q2w3e4r"})
    assert why in html(resp) or why in html(manager.get(resp.headers.get("Location", "/")))
    db.session.expire_all()
    assert authenticate(tech.username, "1q2w3e4r") == (None, "invalid")
    own = Browser(app)
    own.login(tech.username)
    resp = own.post("/account/password?lang=en", {"current_password": PASSWORD,
                                                   "new_password": "ضصثقفغعه",
                                                   "confirm": "ضصثقفغعه"})
    assert resp.status_code == 422 and why in html(resp)
    db.session.expire_all()
    assert authenticate(tech.username, PASSWORD)[0] is not None


def test_a_password_guessed_in_few_tries_is_refused_wherever_one_is_set(app, manager, users):
    """Not on the short list, yet what a guesser tries first: a word or a brand with a few
    digits, keys side by side, a Jalali year twice; the account's own names with a year (a
    guess only for this account); a password of unrelated words passes."""
    why = "easy to guess"
    new_user = {"username": "neda", "full_name": "Neda Karimi", "role": "reception",
                "branch_id": branch_id(), "language": "fa"}
    for easy in ("Samsung123", "asdfgh12", "13701370", "karimi1370"):
        resp = manager.post("/admin/users/new?lang=en", {**new_user, "password": easy})
        assert resp.status_code == 422 and why in html(resp), easy
    assert count(User) == len(users)
    assert manager.post("/admin/users/new?lang=en",  # someone else's name is no guess here
                        {**new_user, "username": "sara", "full_name": "Sara Ahmadi",
                         "password": "karimi1370"}).status_code == 302
    tech = users["technician"]
    resp = manager.post(f"/admin/users/{tech.id}/password?lang=en",
                        {"password": tech.username + "1365"})
    assert why in html(resp) or why in html(manager.get(resp.headers.get("Location", "/")))
    db.session.expire_all()
    assert authenticate(tech.username, PASSWORD)[0] is not None
    own = Browser(app)
    own.login(tech.username)
    resp = own.post("/account/password?lang=en", {"current_password": PASSWORD,
                                                   "new_password": tech.username + "1370",
                                                   "confirm": tech.username + "1370"})
    assert resp.status_code == 422 and why in html(resp)
    resp = own.post("/account/password?lang=en", {"current_password": PASSWORD,
                                                   "new_password": "kettle orbit saffron",
                                                   "confirm": "kettle orbit saffron"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert authenticate(tech.username, "kettle orbit saffron")[0] is not None


def test_the_manager_logs_a_stolen_kiosk_tablet_out_everywhere(app, manager, users):
    kiosk = add_user("lobby", "kiosk")
    tablet = Browser(app)
    assert tablet.login("lobby").status_code == 302
    assert tablet.get("/kiosk").status_code == 200
    listed = html(manager.get("/admin/users"))
    assert f'href="/admin/users/{kiosk.id}"' in listed
    assert manager.get(f"/admin/users/{kiosk.id}").status_code == 200
    assert manager.post(f"/admin/users/{kiosk.id}/deactivate").status_code == 302
    resp = tablet.get("/kiosk")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    db.session.expire_all()
    assert authenticate("lobby", PASSWORD) == (None, "invalid")


def test_a_manager_cannot_change_managers_or_administrators_nor_give_those_roles(
        app, manager, users):
    before = count(User), count(AuditLog)
    listed = html(manager.get("/admin/users?lang=en"))
    for role in ("admin", "manager"):
        user = users[role]
        assert f'href="/admin/users/{user.id}"' not in listed
        assert manager.get(f"/admin/users/{user.id}").status_code == 403
        assert manager.post(f"/admin/users/{user.id}/password",
                            {"password": "taken over 2026"}).status_code == 403
        assert manager.post(f"/admin/users/{user.id}/deactivate").status_code == 403
        db.session.expire_all()
        assert authenticate(user.username, PASSWORD)[0] is not None
    assert "changed by an administrator" in listed
    form = html(manager.get("/admin/users/new?lang=en"))
    offered = re.findall(r'<option[^>]*value="(\w+)"', form.split('name="role"')[1]
                         .split("</select>")[0])
    assert offered == ["reception", "technician", "kiosk"]
    made = manager.post("/admin/users/new", {"username": "boss", "role": "admin",
                                             "branch_id": 0, "language": "",
                                             "password": "long enough pw"})
    assert made.status_code == 422
    tech = users["technician"]
    raised = manager.post(f"/admin/users/{tech.id}", {"full_name": "", "role": "manager",
                                                      "branch_id": branch_id(), "language": ""})
    assert raised.status_code == 422
    # API tokens stay the administrator's
    assert "Issue an API token" not in html(manager.get(f"/admin/users/{tech.id}?lang=en"))
    assert manager.post(f"/admin/users/{tech.id}/tokens", {"name": "x"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(User, tech.id).role == "technician"
    assert (count(User), count(AuditLog)) == before


def test_staff_change_their_own_password_and_their_other_sessions_end(app, users):
    """No administrator needed to change one's own password: the current one first, the new
    one twice; the phone still logged in is logged out, this browser stays in."""
    tech = users["technician"]
    here, phone = Browser(app), Browser(app)
    here.login(tech.username)
    phone.login(tech.username)
    wrong = here.post("/account/password?lang=en", {"current_password": "not it at all",
                                                    "new_password": "a new one 2026",
                                                    "confirm": "a new one 2026"})
    assert wrong.status_code == 422 and "This is not your current password." in html(wrong)
    differ = here.post("/account/password?lang=en", {"current_password": PASSWORD,
                                                     "new_password": "a new one 2026",
                                                     "confirm": "a new one 2027"})
    assert differ.status_code == 422 and "The two new passwords differ." in html(differ)
    db.session.expire_all()
    assert authenticate(tech.username, PASSWORD)[0] is not None
    assert rows("user.password_change") == []  # refused: nothing changed
    done = here.post("/account/password", {"current_password": PASSWORD,
                                           "new_password": "a new one 2026",
                                           "confirm": "a new one 2026"})
    assert done.status_code == 302 and done.headers["Location"] == "/workbench/"
    assert here.get("/workbench/").status_code == 200
    assert "/login" in phone.get("/workbench/").headers.get("Location", "")
    db.session.expire_all()
    assert authenticate(tech.username, PASSWORD) == (None, "invalid")
    assert authenticate(tech.username, "a new one 2026")[0] is not None
    [row] = rows("user.password_change")
    assert row.actor_id == tech.id and "a new one" not in str(row.value_to)


def test_a_password_someone_else_set_is_changed_before_any_other_page_opens(app, admin, users):
    """The administrator who made Sara's account saw her password (and may have read it out at
    the counter): her pages ask for one of her own first; until then nothing else opens, a
    polled fragment included. A password reset by another asks again; a kiosk's and one's own
    reset do not."""
    resp = admin.post("/admin/users/new", {"username": "sara", "full_name": "Sara",
                                           "role": "reception", "branch_id": branch_id(),
                                           "language": "", "password": ""})
    given = re.search(r'<code class="ltr" dir="ltr">([^<]+)</code>', html(resp)).group(1)
    assert "is asked to choose a password of their own" in html(resp)
    sara = Browser(app)
    assert sara.login("sara", given).status_code == 302
    for page in ("/desk", "/tickets/", "/desk/find?q=x"):
        assert sara.get(page).headers.get("Location") == "/account/password", page
    polled = sara.get("/desk", headers={"HX-Request": "true"})
    assert (polled.status_code, polled.headers["HX-Redirect"]) == (204, "/account/password")
    page = html(sara.get("/account/password"))
    assert "Your password was set by someone else" in page
    # the one she was given again is not one of her own
    same = sara.post("/account/password", {"current_password": given, "new_password": given,
                                           "confirm": given})
    assert same.status_code == 422 and "other than your current one" in html(same)
    assert sara.get("/desk").headers.get("Location") == "/account/password"
    done = sara.post("/account/password", {"current_password": given,
                                           "new_password": "sara's own 1405",
                                           "confirm": "sara's own 1405"})
    assert done.status_code == 302 and done.headers["Location"] == "/desk"
    assert sara.get("/desk").status_code == 200
    assert "Your password was set by someone else" not in html(sara.get("/account/password"))

    user = db.session.scalar(select(User).where(User.username == "sara"))
    admin.post(f"/admin/users/{user.id}/password", {"password": "handed over 2026"})
    assert sara.login("sara", "handed over 2026").status_code == 302
    assert sara.get("/desk").headers.get("Location") == "/account/password"

    lobby = add_user("lobby", "kiosk")
    assert admin.post(f"/admin/users/{lobby.id}/password",
                      {"password": "tablet in the hall"}).status_code == 302
    me = users["admin"]  # (their own reset ends their sessions: last)
    assert admin.post(f"/admin/users/{me.id}/password",
                      {"password": "my own choice 2026"}).status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, me.id).password_change_due
    assert not db.session.get(User, lobby.id).password_change_due
    tablet = Browser(app)
    assert tablet.login("lobby", "tablet in the hall").status_code == 302
    assert tablet.get("/kiosk").status_code == 200


def test_an_api_token_works_while_its_users_password_change_is_due(app, admin, users):
    """The token was made for a program (the till, a spreadsheet), not handed over as the
    password was: its requests are not sent to a password page."""
    tech = users["reception"]
    admin.post(f"/admin/users/{tech.id}/password", {"password": "handed over 2026"})
    resp = admin.post(f"/admin/users/{tech.id}/tokens", {"name": "till"})
    token = re.search(r'data-token>([^<]+)</code>', html(resp)).group(1)
    with app.app_context():
        answer = app.test_client().get("/api/v1/tickets",
                                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:200]


def test_a_kiosk_account_has_no_password_page(app, users):
    add_user("lobby", "kiosk")
    tablet = Browser(app)
    tablet.login("lobby")
    assert tablet.get("/account/password").status_code == 403


def test_a_new_account_starts_at_the_branch_of_who_adds_it(app, users):
    """A manager of the second branch adding its receptionist: the form starts at that
    branch, not at 'None' (whose desk would be the first branch's)."""
    vanak = Branch(name="Vanak", code="V")
    db.session.add(vanak)
    db.session.commit()
    boss = add_user("boss", "manager")
    boss.branch_id = vanak.id
    db.session.commit()
    manager = Browser(app)
    manager.login("boss")
    form = html(manager.get("/admin/users/new?lang=en"))
    branch_select = form.split('name="branch_id"')[1].split("</select>")[0]
    assert re.search(rf'<option selected value="{vanak.id}">|<option value="{vanak.id}" selected',
                     branch_select), branch_select
    assert "act on every branch's tickets" in form


def test_an_admin_cannot_deactivate_themselves_or_demote_the_last_admin(admin, users):
    me = users["admin"]
    admin.post(f"/admin/users/{me.id}/deactivate")
    resp = admin.post(f"/admin/users/{me.id}", {"full_name": "", "role": "manager",
                                                "branch_id": 0, "language": ""})
    assert resp.status_code == 409 and "last active administrator" in html(resp)
    db.session.expire_all()
    me = db.session.get(User, me.id)
    assert me.active and me.role == "admin"
    assert rows("user.deactivate") == [] and rows("user.update") == []


def test_password_reset_ends_sessions_lifts_the_lock_and_never_logs_the_password(app, admin,
                                                                                   users):
    tech = users["technician"]
    for _ in range(5):
        authenticate(tech.username, "wrong password")
    db.session.expire_all()
    assert db.session.get(User, tech.id).locked_until is not None
    resp = admin.post(f"/admin/users/{tech.id}/password", {"password": "a brand new secret"})
    assert resp.status_code == 302
    db.session.expire_all()
    tech = db.session.get(User, tech.id)
    assert tech.locked_until is None
    assert authenticate(tech.username, PASSWORD) == (None, "invalid")
    assert authenticate(tech.username, "a brand new secret")[0].id == tech.id
    [row] = rows("user.password_reset")
    assert row.value_to == {"generated": False}
    assert "a brand new secret" not in str(row.value_to) + str(row.value_from)


def test_a_tokens_last_use_is_on_the_users_page(admin, users, api, app):
    """An admin tells a live integration from an abandoned one before revoking its token: a
    GET counts (its request commits nothing), noted at most once an hour."""
    from servicedesk.models import ApiToken
    tech = users["technician"]
    token_row = db.session.scalar(select(ApiToken).where(ApiToken.user_id == tech.id))
    assert token_row.last_used_at is None
    assert api["technician"].get("/api/v1/tickets").status_code == 200
    db.session.expire_all()
    first = db.session.get(ApiToken, token_row.id).last_used_at
    assert first is not None and utcnow() - first < timedelta(minutes=1)
    assert api["technician"].get("/api/v1/tickets").status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, token_row.id).last_used_at == first  # not a write a request
    from servicedesk.i18n import format_datetime
    with app.test_request_context("/?lang=en"):
        shown = format_datetime(first, locale="en")
    page = html(admin.get(f"/admin/users/{tech.id}?lang=en"))
    assert f"<td>{shown}</td>" in page


def test_admin_revokes_an_api_token(admin, users, api):
    from servicedesk.models import ApiToken
    tech = users["technician"]
    token_row = db.session.scalar(select(ApiToken).where(ApiToken.user_id == tech.id))
    assert api["technician"].get("/api/v1/tickets").status_code == 200
    resp = admin.post(f"/admin/users/{tech.id}/tokens/{token_row.id}/revoke")
    assert resp.status_code == 302
    db.session.expire_all()  # the API client shares this test's session
    assert api["technician"].get("/api/v1/tickets").status_code == 401
    [row] = rows("token.revoke")
    assert row.value_to["revoked"] is True


def test_admin_issues_an_api_token_shown_once(app, admin, users):
    """Reactivated, or new to the API, a user gets a token from their page, not the command
    line: shown once (never cached), named for what uses it, in the audit log."""
    from servicedesk.models import ApiToken
    tech = users["technician"]
    page = html(admin.get(f"/admin/users/{tech.id}?lang=en"))
    assert "data-token-new" in page and "Issue an API token" in page
    resp = admin.post(f"/admin/users/{tech.id}/tokens?lang=en", {"name": "The website"})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    token = re.search(r"<code[^>]*data-token>([^<]+)</code>", html(resp))[1]
    row = db.session.scalar(select(ApiToken).where(ApiToken.name == "The website"))
    assert row.user_id == tech.id and token not in (row.token_hash or "")
    with app.app_context():
        answer = app.test_client().get("/api/v1/tickets",
                                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    [logged] = rows("token.create")
    assert logged.value_to == {"user_id": tech.id, "name": "The website"}
    # a name is needed; a deactivated user gets none
    assert admin.post(f"/admin/users/{tech.id}/tokens", {"name": " "}).status_code == 302
    admin.post(f"/admin/users/{tech.id}/deactivate")
    assert "data-token-new" not in html(admin.get(f"/admin/users/{tech.id}"))
    refused = admin.post(f"/admin/users/{tech.id}/tokens", {"name": "Again"})
    assert refused.status_code == 302
    assert db.session.scalar(select(func.count(ApiToken.id)).where(
        ApiToken.name.in_(("Again", " ")))) == 0
    assert len(rows("token.create")) == 1
    # nor an administrator: staff pages take tokens too, and theirs would open every page;
    # one made an administrator loses the tokens they had
    from servicedesk.services.people import issue_token, user_for_token
    reception = users["reception"]
    kept = issue_token(reception)
    admin.post(f"/admin/users/{reception.id}", {"full_name": "", "role": "admin",
                                                 "branch_id": 0, "language": ""})
    db.session.expire_all()
    assert db.session.get(User, reception.id).role == "admin" and user_for_token(kept) is None
    me = users["admin"]
    assert "data-token-new" not in html(admin.get(f"/admin/users/{me.id}"))
    admin.post(f"/admin/users/{me.id}/tokens", {"name": "Mine"})
    assert db.session.scalar(select(func.count(ApiToken.id)).where(ApiToken.user_id == me.id)) \
        == 0


# --- branches --------------------------------------------------------------------------------

def test_branches_are_created_and_changed_with_their_hours(admin):
    resp = admin.post("/admin/branches/new", {"name": "Tajrish", "code": "t",
                                              "hours": "Sat-Wed 9-18", "active": "y"})
    assert resp.status_code == 302
    branch = db.session.scalar(select(Branch).where(Branch.name == "Tajrish"))
    assert branch.code == "T" and branch.active
    assert settings.branch_hours(branch.id) == "Sat-Wed 9-18"
    [created] = rows("branch.create")
    assert created.value_to == {"name": "Tajrish", "code": "T", "active": True,
                                "hours": "Sat-Wed 9-18"}

    resp = admin.post(f"/admin/branches/{branch.id}", {"name": "Tajrish", "code": "TJ",
                                                       "hours": "Sat-Thu 10-20"})
    assert resp.status_code == 302
    db.session.expire_all()
    branch = db.session.get(Branch, branch.id)
    assert (branch.code, branch.active) == ("TJ", False)
    [changed] = rows("branch.update")
    assert changed.value_from == {"code": "T", "active": True, "hours": "Sat-Wed 9-18"}
    assert changed.value_to == {"code": "TJ", "active": False, "hours": "Sat-Thu 10-20"}
    assert "Sat-Thu 10-20" in html(admin.get("/admin/branches"))


def test_branch_codes_are_unique_and_the_last_branch_stays_open(admin):
    main = ticket_service.default_branch()
    dup = admin.post("/admin/branches/new", {"name": "Other", "code": main.code.lower()})
    assert dup.status_code == 422
    close = admin.post(f"/admin/branches/{main.id}", {"name": main.name, "code": main.code})
    assert close.status_code == 409
    db.session.expire_all()
    assert count(Branch) == 1 and db.session.get(Branch, main.id).active
    assert rows("branch.create") == [] and rows("branch.update") == []


def test_a_code_another_branchs_tickets_carry_is_refused(admin, make_ticket):
    """Branch A becomes T; a new branch may not take A: its count starts at 1 and A-00001 is
    taken (every intake there would fail). The branch itself may have its old code back."""
    main = ticket_service.default_branch()
    old = main.code
    make_ticket("intake")
    assert admin.post(f"/admin/branches/{main.id}", {"name": main.name, "code": "T",
                                                     "active": "y"}).status_code == 302
    resp = admin.post("/admin/branches/new?lang=en", {"name": "Karaj", "code": old.lower(),
                                                      "active": "y"})
    assert resp.status_code == 422
    assert "Tickets of another branch already carry this code" in html(resp)
    assert count(Branch) == 1
    assert admin.post(f"/admin/branches/{main.id}", {"name": main.name, "code": old,
                                                     "active": "y"}).status_code == 302


# --- service types ---------------------------------------------------------------------------

def test_manager_adds_a_service_type_and_the_built_in_ones_stay(app, manager):
    assert settings.service_type_codes() == tuple(app.config["SERVICE_TYPES"])
    resp = manager.post("/admin/service-types/new", {"code": "battery", "name_fa": "باتری",
                                                     "name_en": "Battery", "active": "y"})
    assert resp.status_code == 302
    assert settings.service_type_codes() == (*app.config["SERVICE_TYPES"], "battery")
    assert settings.service_type_label("battery", "fa") == "باتری"
    [row] = rows("service_type.create")
    assert row.value_to == {"code": "battery", "name_fa": "باتری", "name_en": "Battery",
                            "active": True}

    resp = manager.post("/admin/service-types/warranty", {"name_fa": "گارانتی",
                                                          "name_en": "Guarantee"})
    assert resp.status_code == 302
    assert "warranty" not in settings.service_type_codes()
    [row] = rows("service_type.update")
    assert row.value_from == {"name_en": "Warranty", "active": True}
    assert row.value_to == {"name_en": "Guarantee", "active": False}


def test_service_type_codes_are_checked(manager):
    for code in ("Bad Code", "repair", "1x"):
        resp = manager.post("/admin/service-types/new", {"code": code, "name_fa": "x",
                                                         "name_en": "x"})
        assert resp.status_code == 422, code
    assert rows("service_type.create") == []


# --- SMS templates ---------------------------------------------------------------------------

def test_manager_edits_a_template_and_the_next_sms_uses_it(manager, make_ticket):
    body = "{shop_name}: got your {device}. {tracking_url}"
    resp = manager.post("/admin/templates/admit/fa", {"body": body, "enabled": "y"})
    assert resp.status_code == 302
    [row] = rows("template.update")
    assert row.object_type == "sms_template" and row.object_id == "admit:fa"
    assert row.value_to == {"body": body}
    assert "{tracking_url}" in row.value_from["body"]
    ticket = make_ticket("intake")
    assert ticket.notifications[0].body.startswith("Test Repair Shop: got your Samsung Galaxy")


def test_a_template_switched_off_sends_nothing(manager, make_ticket):
    from servicedesk.notifications.templates import default_body
    resp = manager.post("/admin/templates/admit/fa",
                        {"body": default_body("admit", "fa")})  # "enabled" unticked
    assert resp.status_code == 302
    [row] = rows("template.update")
    assert row.value_from == {"enabled": True} and row.value_to == {"enabled": False}
    ticket = make_ticket("intake")
    assert ticket.notifications == []


@pytest.mark.parametrize("body", ["Hello {name}", "Total {estimate_total:>99999999}",
                                  "{device!r}", "{device.__class__}", "Broken {brace", "{}", ""])
def test_templates_with_unknown_or_unsafe_placeholders_are_refused(manager, body):
    resp = manager.post("/admin/templates/quote/en", {"body": body, "enabled": "y"})
    assert resp.status_code == 422
    assert count(SmsTemplate) == 0 and rows("template.update") == []


def test_live_preview_renders_a_sample_ticket_and_counts_segments(manager):
    resp = manager.post("/admin/templates/finish/en/preview",
                        {"body": "{shop_name}: ready, {amount_due}."},
                        headers={"HX-Request": "true"})
    assert resp.status_code == 200
    text = html(resp)
    assert "Test Repair Shop: ready, 1,400,000 toman." in text
    assert "1 SMS (GSM-7)" in text
    fa = html(manager.post("/admin/templates/finish/fa/preview", {"body": "آماده است " * 10}))
    assert "UCS-2" in fa
    bad = html(manager.post("/admin/templates/finish/en/preview", {"body": "{nope}"}))
    assert "nope" in bad and "data-preview-text" not in bad
    dated = html(manager.post("/admin/templates/finish/en/preview?lang=en",
                              {"body": "Ready; we promised {promised_date}."}))
    assert "data-preview-if-empty" in dated
    assert "When the ticket has no promised date, it reads:" in dated
    assert "Ready; we promised not set yet." in dated
    assert "data-preview-if-empty" not in text
    assert count(SmsTemplate) == 0


def test_template_page_lists_the_variables_and_resets_to_the_shipped_text(manager):
    from servicedesk.notifications.templates import VARIABLES, default_body, variables_for
    page = html(manager.get("/admin/templates/quote/en"))
    for name in VARIABLES:  # the ticket's variables, not the queue number's
        assert (f'data-insert="{{{name}}}"' in page) == (name in variables_for("quote"))
    assert 'data-insert="{ticket_number}"' in page and 'data-insert="{label}"' not in page
    queue_page = html(manager.get("/admin/templates/visit_called/en"))
    assert 'data-insert="{counter}"' in queue_page
    assert 'data-insert="{ticket_number}"' not in queue_page
    manager.post("/admin/templates/quote/en", {"body": "Quote: {estimate_total}"})  # and off
    # resetting asks first, and says the SMS comes back on
    page = html(manager.get("/admin/templates/quote/en?lang=en"))
    step = page.split('data-confirm-step="template-reset"', 1)[1].split("</details>", 1)[0]
    assert "this SMS is switched on again" in step and "Replace my text" in step
    assert manager.post("/admin/templates/quote/en/reset").status_code == 302
    assert count(SmsTemplate) == 0
    [row] = rows("template.reset")
    assert row.value_from == {"body": "Quote: {estimate_total}", "enabled": False}
    assert row.value_to["body"] == default_body("quote", "en")


def test_a_text_saved_before_its_variable_was_refused_is_flagged_on_the_list(manager):
    """A {part} in the 'ready' SMS was accepted before the check: it still goes out empty, so
    the list says so, to be mended."""
    assert 'data-insert="{part}"' not in html(manager.get("/admin/templates/finish/en"))
    db.session.add(SmsTemplate(event="finish", language="en", body="Ready, {part} fitted.",
                               enabled=True))
    db.session.commit()
    page = html(manager.get("/admin/templates?lang=en"))
    assert page.count("data-template-problem") == 1
    assert "This SMS has no {part}" in page


# --- shop settings ---------------------------------------------------------------------------

SETTINGS_FORM = {"shop_name": "Mobile Doctor", "shop_phone": "021-88776655",
                 "shop_address": "Valiasr St.", "receipt_terms": "Collect within 30 days.",
                 "delivery_terms": "Warranty: 3 months on the parts fitted.\nKeep this slip.",
                 "money_display": "rial", "auto_close_days": "۱۰", "remind_estimate_days": "2",
                 "remind_pickup_days": "۳", "warranty_days": "90", "loaner_overdue_days": "14",
                 "limit_intake": "3",
                 "limit_diagnosis": "12", "limit_estimate": "", "limit_repair": "48",
                 "limit_waiting_parts": "240", "limit_ready": "168"}


def test_settings_fall_back_to_the_config_until_set(app):
    assert settings.get("shop_name") == "Test Repair Shop"
    assert settings.get("SHOP_PHONE") == "021-12345678"
    assert settings.get("auto_close_days") == 7
    assert settings.get("state_time_limits") == {"intake": 2, "diagnosis": 24, "estimate": 48,
                                                 "repair": 72, "ready": 168}
    db.session.add(Setting(key="shop_name", value="Stored"))
    db.session.commit()
    assert settings.get("shop_name") == "Stored"


def test_money_is_shown_in_the_unit_the_admin_chose(app, admin, make_ticket):
    from servicedesk.i18n import format_money, money_display, money_unit_word
    with app.test_request_context("/?lang=en"):
        assert (money_display(), format_money(12_500_000, locale="en")) == \
            ("toman", "1,250,000 toman")
    assert admin.post("/admin/settings", SETTINGS_FORM).status_code == 302  # rial
    assert app.config["MONEY_DISPLAY"] == "toman"
    with app.test_request_context("/?lang=en"):
        assert money_display() == "rial"
        assert format_money(12_500_000, locale="en") == "12,500,000 rial"
        assert format_money(12_500_000, locale="en", unit="toman") == "1,250,000 toman"
        assert money_unit_word() == "rial"
    ticket = make_ticket("estimate")  # 14,000,000 rials estimated
    assert "14,000,000 rial" in html(admin.get(f"/tickets/{ticket.id}"))


def test_the_delivery_terms_set_on_the_settings_page_are_printed(admin, manager, make_ticket):
    """The README promises the delivery receipt's terms as a setting: the page sets them."""
    ticket = make_ticket("delivered")
    assert "Keep this slip." not in html(manager.get(f"/tickets/{ticket.id}/delivery-receipt"))
    assert admin.post("/admin/settings", SETTINGS_FORM).status_code == 302
    slip = html(manager.get(f"/tickets/{ticket.id}/delivery-receipt"))
    assert "Warranty: 3 months on the parts fitted." in slip and "Keep this slip." in slip
    assert 'name="delivery_terms"' in html(admin.get("/admin/settings"))


def test_shop_settings_are_saved_one_audit_record_per_changed_key(admin):
    resp = admin.post("/admin/settings", SETTINGS_FORM)
    assert resp.status_code == 302
    assert settings.get("shop_name") == "Mobile Doctor"
    assert settings.get("money_display") == "rial"
    assert settings.get("auto_close_days") == 10
    assert settings.time_limits() == {"intake": 3, "diagnosis": 12, "repair": 48,
                                      "waiting_parts": 240, "ready": 168}
    changed = {r.object_id: r for r in rows("setting.update")}
    assert set(changed) == {"shop_name", "shop_phone", "shop_address", "receipt_terms",
                            "delivery_terms", "money_display", "auto_close_days",
                            "state_time_limits"}
    assert changed["shop_name"].value_from == {"shop_name": "Test Repair Shop"}
    assert changed["shop_name"].value_to == {"shop_name": "Mobile Doctor"}
    # Saving the same values again changes nothing and records nothing.
    admin.post("/admin/settings", SETTINGS_FORM)
    assert len(rows("setting.update")) == 8
    page = html(admin.get("/admin/settings"))
    assert 'value="Mobile Doctor"' in page
    # the reminders: 0 is none
    admin.post("/admin/settings", {**SETTINGS_FORM, "remind_estimate_days": "0",
                                   "remind_pickup_days": "۵"})
    assert (settings.get("remind_estimate_days"), settings.get("remind_pickup_days")) == (0, 5)
    # a Persian page shows the days and hours in Persian digits, and saving it changes nothing
    page = html(admin.get("/admin/settings?lang=fa"))
    shown = dict(re.findall(r'name="(auto_close_days|remind_pickup_days|limit_repair)"'
                            r'[^>]*value="([^"]*)"', page))
    assert shown == {"auto_close_days": "۱۰", "remind_pickup_days": "۵", "limit_repair": "۴۸"}
    recorded = len(rows("setting.update"))
    admin.post("/admin/settings", {**SETTINGS_FORM, "remind_estimate_days": "0",
                                   "remind_pickup_days": "۵", **shown})
    assert len(rows("setting.update")) == recorded


def test_an_empty_field_is_named_as_on_every_other_form(admin):
    """WTForms' own Persian words for an empty field differ from the app's; one wording."""
    resp = admin.post("/admin/settings?lang=fa", {**SETTINGS_FORM, "shop_name": ""})
    assert resp.status_code == 422
    assert "این فیلد الزامی است." in html(resp) and "اجباریست" not in html(resp)


def test_every_bad_setting_is_named_at_once(admin):
    """An empty shop name (the form's own check) does not hide the bad numbers (the service's):
    the admin mends them all in one go."""
    resp = admin.post("/admin/settings", {**SETTINGS_FORM, "shop_name": "",
                                          "auto_close_days": "-1", "remind_pickup_days": "abc",
                                          "limit_repair": "99999999999"})
    assert resp.status_code == 422
    page = html(resp)
    bad = set(re.findall(r'name="([a-z_]+)"[^>]*class="[^"]*is-invalid', page)) | set(
        re.findall(r'class="[^"]*is-invalid[^"]*"[^>]*name="([a-z_]+)"', page))
    assert bad == {"shop_name", "auto_close_days", "remind_pickup_days", "limit_repair"}, bad
    assert count(Setting) == 0


def test_the_warranty_days_are_the_shops_setting(app, admin, users, make_ticket):
    """Set on the settings page (not only in the config): the delivery receipt promises them,
    and 0 promises none."""
    ticket = make_ticket("delivered")
    receipt = f"/tickets/{ticket.id}/delivery-receipt?lang=en"
    desk = Browser(app)
    desk.login(users["reception"].username)
    assert "under warranty for 90 days" in html(desk.get(receipt))
    form = {**SETTINGS_FORM, "delivery_terms": ""}  # the built-in terms name the warranty
    assert admin.post("/admin/settings", {**form, "warranty_days": "30"}).status_code == 302
    assert settings.get("warranty_days") == 30
    assert "under warranty for 30 days" in html(desk.get(receipt))
    admin.post("/admin/settings", {**form, "warranty_days": "0"})
    assert "warranty" not in html(desk.get(receipt))
    assert admin.post("/admin/settings", {**form, "warranty_days": "-5"}).status_code == 422


def test_the_loaner_phones_overdue_days_are_the_shops_setting(app, admin, users, make_ticket):
    """Only in the config (LOANER_OVERDUE_DAYS) until now: the shop sets on the settings page
    after how many days out a loaner phone of its list is flagged overdue."""
    from datetime import timedelta

    from servicedesk.lifecycle import Actor
    from servicedesk.services import loaners
    page = html(admin.get("/admin/settings?lang=en"))
    assert "A loaner phone is overdue after (days out)" in page
    assert re.search(r'name="loaner_overdue_days"[^>]*value="14"', page), page
    assert settings.get("loaner_overdue_days") == 14  # the config's until set
    from .test_loaner_stock import add_phone
    phone = add_phone(users["manager"])
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
    ten_days_on = loaners.out(ticket.id).lent_at + timedelta(days=10)
    assert loaners.stock(now=ten_days_on)[0].overdue is None
    assert admin.post("/admin/settings", {**SETTINGS_FORM, "loaner_overdue_days": "۷"}
                      ).status_code == 302
    assert settings.get("loaner_overdue_days") == 7 and app.config["LOANER_OVERDUE_DAYS"] == 14
    assert loaners.stock(now=ten_days_on)[0].overdue == "long"
    assert re.search(r'name="loaner_overdue_days"[^>]*value="7"',
                     html(admin.get("/admin/settings?lang=en")))
    for bad in ("0", "", "soon"):
        resp = admin.post("/admin/settings", {**SETTINGS_FORM, "loaner_overdue_days": bad})
        assert resp.status_code == 422, bad
    assert settings.get("loaner_overdue_days") == 7


def test_bad_settings_are_refused_and_nothing_is_written(admin):
    for field, value in (("auto_close_days", "0"), ("auto_close_days", "soon"),
                         ("money_display", "dollar"), ("limit_repair", "-4"), ("shop_name", ""),
                         ("remind_estimate_days", "-1"), ("remind_pickup_days", "never"),
                         ("remind_pickup_days", ""), ("warranty_days", "soon")):
        resp = admin.post("/admin/settings", {**SETTINGS_FORM, field: value})
        assert resp.status_code == 422, field
    assert count(Setting) == 0 and rows("setting.update") == []


# --- per-state time limits -------------------------------------------------------------------

def test_overdue_tickets_are_found_in_sql_per_state_limit(make_ticket, users):
    intake = make_ticket("intake")
    diagnosis = make_ticket("diagnosis")
    ready = make_ticket("ready")
    delivered = make_ticket("delivered")
    now = utcnow()

    def overdue(at):
        return set(db.session.scalars(settings.overdue_tickets(select(Ticket.id), now=at)))

    assert overdue(now) == set()
    assert overdue(now + timedelta(hours=3)) == {intake.id}  # intake limit 2 h
    assert overdue(now + timedelta(hours=25)) == {intake.id, diagnosis.id}
    assert overdue(now + timedelta(days=30)) == {intake.id, diagnosis.id, ready.id}
    assert delivered.id not in overdue(now + timedelta(days=300))
    assert settings.overdue_ids([intake.id, ready.id], now + timedelta(hours=3)) == {intake.id}
    for ticket in (intake, diagnosis, ready, delivered):
        assert settings.is_overdue(ticket, now + timedelta(hours=25)) == (
            ticket.id in overdue(now + timedelta(hours=25)))


def test_a_claim_does_not_restart_the_clock_but_a_new_state_does(make_ticket, users):
    from servicedesk import lifecycle
    ticket = make_ticket("diagnosis")
    later = utcnow() + timedelta(hours=30)
    lifecycle.record(ticket, "claim", Actor.staff(users["technician"]), at=later)
    db.session.commit()
    assert settings.overdue_ids([ticket.id], later + timedelta(minutes=1)) == {ticket.id}
    ticket_service.fire_event(ticket.id, "return_unrepaired", Actor.staff(users["technician"]),
                              {"reason": "board"})
    assert settings.overdue_ids([ticket.id], utcnow() + timedelta(hours=30)) == set()


def test_time_limits_come_from_the_settings(admin, make_ticket):
    ticket = make_ticket("intake")
    admin.post("/admin/settings", {**SETTINGS_FORM, "limit_intake": ""})
    assert "intake" not in settings.time_limits()
    assert settings.overdue_ids([ticket.id], utcnow() + timedelta(days=90)) == set()


# --- role matrix and audit search ------------------------------------------------------------

def test_role_matrix_page_shows_every_permission_and_event(admin):
    from servicedesk.auth import PERMISSIONS
    page = html(admin.get("/admin/roles"))
    for key in PERMISSIONS:
        assert f'<code dir="ltr">{key}</code>' in page
    for name in EVENTS:
        assert f'<code class="small" dir="ltr">{name}</code>' in page
    assert "/admin/users" in page and "/admin/templates" in page
    assert "/api/v1/reports/costs" in page  # the API's routes are in the matrix too
    matrix = admin_service.role_matrix()
    cells = re.findall(r'data-role="(\w+)" data-allowed="(yes|no)"', page)
    expected = [(role, "yes" if role in p["roles"] else "no")
                for p in matrix["permissions"] for role in matrix["roles"]]
    expected += [(actor, "yes" if actor in e["roles"] else "no")
                 for e in matrix["events"] for actor in matrix["event_actors"]]
    assert cells == expected


def test_audit_search_by_action_user_and_date(app, admin, users, make_ticket):
    admin.post("/admin/branches/new", {"name": "Tajrish", "code": "T", "active": "y"})
    admin.post("/admin/settings", SETTINGS_FORM)
    ticket = make_ticket("diagnosis")
    old = AuditLog(at=utcnow() - timedelta(days=40), actor_name="someone", action="slip.print",
                   object_type="tickets", object_id=str(ticket.id))
    gone = AuditLog(at=utcnow() - timedelta(days=41), actor_name="someone",
                    action="slip.print", object_type="tickets", object_id="987654")
    db.session.add_all([old, gone])
    db.session.commit()

    def found(query):
        page = html(admin.get("/admin/audit" + query))
        return re.findall(r'<code class="small" dir="ltr">([\w.]+)</code>', page)

    assert set(found("")) == {"login.ok", "branch.create", "setting.update", "slip.print"}
    assert set(found("?action=setting")) == {"setting.update"}
    assert found("?action=branch.create") == ["branch.create"]
    assert found("?user=SOMEONE") == ["slip.print"] * 2
    assert set(found(f"?user={users['admin'].username}")) == {"login.ok", "branch.create",
                                                              "setting.update"}
    # a user's name also finds what was done to their account
    tech = users["technician"]
    admin.post(f"/admin/users/{tech.id}", {"full_name": "Ali R", "role": "technician",
                                            "branch_id": 0, "language": ""})
    assert "user.update" in found(f"?user={tech.username}")
    today = utcnow().date()
    assert "slip.print" not in found(f"?date_from={today - timedelta(days=1)}")
    assert found(f"?date_to={today - timedelta(days=39)}") == ["slip.print"] * 2
    assert "Enter a date" in html(admin.get("/admin/audit?date_from=yesterday"))
    # what a row is about, in words: not the table's name
    page = html(admin.get("/admin/audit?lang=en&action=slip.print"))
    assert ">tickets " not in page
    # a ticket's row names it by its number and opens it; one since gone keeps its id
    assert (f'<bdi>Ticket <a href="/tickets/{ticket.id}" dir="ltr">{ticket.number}</a></bdi>'
            in page)
    assert '<bdi>Ticket <span dir="ltr">987654</span></bdi>' in page
    branch = db.session.scalar(select(Branch).where(Branch.name == "Tajrish"))
    page = html(admin.get("/admin/audit?lang=en&action=branch"))
    assert (f'<bdi>Branch <a href="/admin/branches/{branch.id}">Tajrish</a></bdi>' in page)
    page = html(admin.get("/admin/audit?lang=en&action=login"))
    me = users["admin"]
    assert f'<a href="/admin/users/{me.id}" dir="ltr">{me.username}</a>' in page


def audit_page(browser, query="") -> list[tuple[str, str, str]]:
    """(who, action, after) of each row the admin audit page shows."""
    page = html(browser.get("/admin/audit" + query))
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if len(cells) == 7:
            who = re.sub(r"<[^>]+>", "", cells[1]).strip()
            action = re.search(r'<code class="small" dir="ltr">([\w.]+)</code>', cells[2])[1]
            found.append((who, action, cells[5]))
    return found


def test_logins_and_failed_logins_are_on_the_audit_page_without_the_password(app, admin,
                                                                              users):
    tech = users["technician"].username
    Browser(app).login(tech, "a wrong guess 123")
    Browser(app).login("nobody-at-all", "another guess 456")
    assert Browser(app).login(tech).status_code == 302

    shown = audit_page(admin, "?action=login")
    assert {(who, action) for who, action, _after in shown} == {
        (users["admin"].username, "login.ok"), (tech, "login.ok"), ("-", "login.failed")}
    failed = " ".join(after for _who, action, after in shown if action == "login.failed")
    assert tech in failed and "invalid" in failed
    # a name no account has is kept as a digest: it may be a password typed in the name box;
    # keyed with the shop's secret, so a word list tried against the plain hash finds nothing
    import hashlib
    assert "nobody-at-all" not in failed and "?" in failed
    assert hashlib.sha256(b"nobody-at-all").hexdigest()[:10] not in failed
    page = html(admin.get("/admin/audit"))
    assert "a wrong guess" not in page and "another guess" not in page
    assert PASSWORD not in page
    assert [who for who, _a, _after in audit_page(admin, f"?action=login.ok&user={tech}")] == \
        [tech]


def test_a_logout_is_on_the_audit_page(app, admin, users):
    tech = users["technician"].username
    browser = Browser(app)
    browser.login(tech)
    browser.token("/?lang=en")
    assert "login.logout" not in {action for _w, action, _a in audit_page(admin, "")}
    assert browser.post("/logout", csrf=True).status_code == 302
    assert [(who, action) for who, action, _after in
            audit_page(admin, "?action=login.logout")] == [(tech, "login.logout")]
    for row in rows("login.failed"):
        assert row.actor_id is None and row.ip == "127.0.0.1"


def test_every_printed_slip_is_on_the_audit_page(app, admin, users, make_ticket):
    from servicedesk.services.reception import issue_number
    visit = issue_number(ticket_service.default_branch(), "repair")
    ticket = make_ticket("delivered")
    reception = Browser(app)
    reception.login(users["reception"].username)
    for url in (f"/visits/{visit.id}/slip", f"/tickets/{ticket.id}/receipt?paper=58",
                f"/tickets/{ticket.id}/label", f"/tickets/{ticket.id}/delivery-receipt"):
        assert reception.get(url).status_code == 200, url

    shown = audit_page(admin, "?action=slip.print")
    assert {who for who, _a, _after in shown} == {users["reception"].username}
    printed = [row.value_to["slip"] for row in rows("slip.print")]
    assert printed == ["queue_slip", "receipt", "label", "delivery_receipt"]
    assert [(r.object_type, r.object_id) for r in rows("slip.print")] == [
        ("visits", str(visit.id)), *[("tickets", str(ticket.id))] * 3]
    assert rows("slip.print")[1].value_to["paper"] == "58"
    assert "58" in " ".join(after for _w, _a, after in shown)


def test_report_exports_are_on_the_audit_page(app, admin, manager, users):
    for fmt in ("csv", "xlsx"):
        resp = manager.get(f"/reports/costs?format={fmt}&group_by=technician")
        assert resp.status_code == 200 and resp.headers["Content-Disposition"].startswith(
            "attachment")
    assert manager.get("/reports/costs").status_code == 200  # a page view is no export
    shown = audit_page(admin, "?action=report")
    assert [(who, action) for who, action, _after in shown] == \
        [(users["manager"].username, "report.export")] * 2
    exported = [row.value_to for row in rows("report.export")]
    assert [e["format"] for e in exported] == ["csv", "xlsx"]
    assert all(e["group_by"] == "technician" and e["from"] and e["to"] for e in exported)
    assert [row.object_id for row in rows("report.export")] == ["costs", "costs"]


def test_audit_log_keeps_secrets_and_phone_numbers_out(app, users):
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "10.0.0.9"}):
        row = audit.log("user.update", obj=users["reception"],
                        before={"password": "x", "phone": "+989121234567", "role": "a"},
                        after={"password_hash": "h", "session_token": "t", "role": "b",
                               "nested": {"api_token": "t", "ok": 1}}, actor=users["admin"])
        db.session.commit()
    assert row.value_from == {"role": "a"}
    assert row.value_to == {"role": "b", "nested": {"ok": 1}}
    assert (row.ip, row.actor_name) == ("10.0.0.9", users["admin"].username)


# --- who reaches what ------------------------------------------------------------------------

MANAGE_PAGES = ["/admin/branches", "/admin/branches/new",
                "/admin/settings", "/admin/roles", "/admin/audit"]
TEMPLATE_PAGES = ["/admin/", "/admin/templates", "/admin/templates/admit/fa",
                  "/admin/service-types", "/admin/service-types/new"]
# staff accounts: the manager's too (DESIGN section 1), for reception, technicians and kiosks
USER_PAGES = ["/admin/users", "/admin/users/new"]


@pytest.mark.parametrize("role", ["reception", "technician", "manager", "admin"])
def test_admin_pages_by_role(app, users, role):
    browser = Browser(app)
    browser.login(users[role].username)
    for url in MANAGE_PAGES:
        assert browser.get(url).status_code == (200 if role == "admin" else 403), url
    for url in TEMPLATE_PAGES + USER_PAGES:
        assert browser.get(url).status_code == (
            200 if role in ("manager", "admin") else 403), url


def test_anonymous_users_are_sent_to_the_login_page(app):
    browser = Browser(app)
    for url in MANAGE_PAGES + TEMPLATE_PAGES + USER_PAGES:
        resp = browser.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
    resp = browser.post("/admin/users/new", {"username": "x", "role": "admin", "branch_id": 0,
                                             "language": "", "password": "12345678"})
    assert resp.status_code in (302, 400)
    assert count(User) == 0


def test_user_management_wants_a_fresh_login(app, users):
    """A session restored from the remember-me cookie is not fresh: type the password again
    (only the password: the user stays who they are), then back to the page asked for."""
    browser = Browser(app)
    browser.login(users["admin"].username, remember=True)
    with browser.client.session_transaction() as sess:
        sess["_fresh"] = False
    resp = browser.get("/admin/users?lang=en")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=%2Fadmin%2Fusers%3Flang%3Den"
    page = html(browser.get(resp.headers["Location"]))
    assert "Confirm your password" in page and users["admin"].username in page
    assert "type your password again" in page
    assert browser.get("/admin/templates").status_code == 200  # daily work needs no re-login

    browser._token = None
    login = resp.headers["Location"]
    wrong = browser.post(login, {"username": "technician1", "password": "not it at all"})
    assert wrong.status_code == 401 and "Confirm your password" in html(wrong)
    assert browser.get("/admin/users").status_code == 302  # still not fresh
    again = browser.post(login, {"username": "someone-else", "password": PASSWORD})
    assert again.status_code == 302 and again.headers["Location"] == "/admin/users?lang=en"
    assert browser.get("/admin/users").status_code == 200
    [ok] = [r for r in rows("login.ok") if r.value_to]
    assert ok.value_to == {"reauth": True} and ok.actor_id == users["admin"].id
    [failed] = rows("login.failed")
    assert failed.value_to == {"username": users["admin"].username, "reason": "invalid"}


def test_a_fresh_login_is_not_asked_again(app, admin):
    resp = admin.get("/login?next=/admin/users")
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/users"


def test_nav_shows_administration_to_admins_and_sms_to_managers(admin, manager, app, users):
    assert 'href="/admin/"' in html(admin.get("/"))
    assert "Staff, SMS and services" in html(manager.get("/?lang=en"))
    tech = Browser(app)
    tech.login(users["technician"].username)
    assert 'href="/admin/"' not in html(tech.get("/"))


# --- escaping --------------------------------------------------------------------------------

def test_html_typed_anywhere_is_escaped_on_every_page_that_shows_it(app, admin, users,
                                                                      make_ticket):
    """<script> typed into names, problems, notes, hours, templates and settings is shown as
    text on every page, never run."""
    reception = Browser(app)
    reception.login(users["reception"].username)
    admin.post("/admin/users/new", {"username": "evil", "full_name": SCRIPT, "role": "reception",
                                    "branch_id": 0, "language": "", "password": "long enough pw"})
    admin.post("/admin/branches/new", {"name": SCRIPT, "code": "X", "hours": SCRIPT,
                                       "active": "y"})
    admin.post("/admin/service-types/new", {"code": "evil", "name_fa": SCRIPT,
                                            "name_en": SCRIPT, "active": "y"})
    admin.post("/admin/templates/admit/en", {"body": f"{SCRIPT} {{device}}", "enabled": "y"})
    admin.post("/admin/settings", {**SETTINGS_FORM, "shop_name": SCRIPT,
                                   "shop_address": SCRIPT, "receipt_terms": SCRIPT})
    intake = {**INTAKE, "customer": {**INTAKE["customer"], "name": SCRIPT, "language": "en"},
              "device": {**INTAKE["device"], "brand": SCRIPT}, "problem": SCRIPT,
              "accessories": SCRIPT, "condition": SCRIPT}
    ticket = ticket_service.admit(intake, Actor.staff(users["reception"]))
    reception.post(f"/tickets/{ticket.id}/notes", {"body": SCRIPT, "customer_visible": "1"})
    ticket_service.fire_event(ticket.id, "cancel", Actor.staff(users["reception"]),
                              {"reason": SCRIPT})
    evil = db.session.scalar(select(User).where(User.username == "evil"))
    evil_branch = db.session.scalar(select(Branch).where(Branch.code == "X"))
    assert evil is not None and evil_branch is not None

    pages = {
        admin: ["/admin/users", f"/admin/users/{evil.id}", "/admin/branches",
                f"/admin/branches/{evil_branch.id}", "/admin/service-types",
                "/admin/service-types/evil", "/admin/templates", "/admin/templates/admit/en",
                "/admin/settings", "/admin/audit", f"/tickets/{ticket.id}", "/tickets/"],
        reception: [f"/tickets/{ticket.id}", "/tickets/"],
        Browser(app): [f"/t/{ticket.public_token}"],
    }
    for browser, urls in pages.items():
        for url in urls:
            resp = browser.get(url)
            assert resp.status_code == 200, url
            page = html(resp)
            assert SCRIPT not in page, url
            assert ESCAPED in page, url
    preview = html(admin.post("/admin/templates/admit/en/preview", {"body": SCRIPT}))
    assert SCRIPT not in preview and ESCAPED in preview
    sms = db.session.scalar(select(Notification).where(Notification.ticket_id == ticket.id))
    assert sms.body.startswith(SCRIPT)  # an SMS is plain text: stored as typed


def test_audit_values_read_as_the_page_writes(app):
    """The audit log's details: yes/no and "none", not True/False/None; dates in the page's
    calendar, numbers in its digits; text as typed (a user name "tech2" keeps its digits)."""
    from servicedesk.web.admin import audit_value
    with app.test_request_context("/?lang=fa"):
        from flask_babel import refresh
        refresh()
        assert audit_value(True) == "بله" and audit_value(None) == "هیچ"
        assert audit_value(7) == "۷" and audit_value("tech2") == "tech2"
        assert audit_value("2026-10-23") == "۱۴۰۵/۰۸/۰۱"  # 23 October 2026, Jalali
        assert audit_value({"intake": 2}) == '{"intake": 2}'


def test_the_shops_english_name_is_written_in_english(app, admin, make_ticket):
    """A Persian shop name in an English SMS makes it Unicode (70 characters a part, not 160)
    and reads right to left: the shop's name in English is used for what is in English (SMS,
    pages, slips); Persian keeps the shop name."""
    from servicedesk.models import Notification

    from .conftest import INTAKE
    form = {**SETTINGS_FORM, "shop_name": "تعمیرگاه موبایل دکتر",
            "shop_name_en": "Mobile Doctor"}
    assert admin.post("/admin/settings", form).status_code == 302
    assert "setting.update" in {r.action for r in rows("setting.update")}
    english = make_ticket("intake", intake={**INTAKE, "customer": {
        **INTAKE["customer"], "phone": "09350001111", "language": "en"}})
    persian = make_ticket("intake")
    sms_en = db.session.scalars(select(Notification).where(
        Notification.ticket_id == english.id)).one()
    sms_fa = db.session.scalars(select(Notification).where(
        Notification.ticket_id == persian.id)).one()
    assert sms_en.body.startswith("Mobile Doctor: ") and sms_en.encoding == "GSM-7"
    assert sms_fa.body.lstrip("\u200f").startswith("تعمیرگاه موبایل دکتر")
    assert "Mobile Doctor" in html(admin.get("/admin/?lang=en"))
    assert "تعمیرگاه موبایل دکتر" in html(admin.get("/admin/?lang=fa"))
    with app.app_context():
        page = Browser(app, lang="en").get(f"/t/{english.public_token}?lang=en")
    assert "Mobile Doctor" in html(page)
    # empty: the shop name everywhere
    assert admin.post("/admin/settings", {**form, "shop_name_en": ""}).status_code == 302
    assert "تعمیرگاه موبایل دکتر" in html(admin.get("/admin/?lang=en"))


def test_every_audited_action_is_named_on_the_audit_page_in_persian(app, admin, users):
    """The audit page names each row's action in the shop's words (the code beside it): one's
    own password change, a logout and a till count were shown as their bare codes
    (user.password_change) in Persian and English alike, and the filter listed them so."""
    import pathlib

    from servicedesk.web.admin import ACTION_LABELS
    package = pathlib.Path(__file__).resolve().parents[1] / "servicedesk"
    code = "\n".join(p.read_text() for p in package.rglob("*.py"))
    logged = set(re.findall(r'audit\.log\(\s*"([\w.]+)"', code))
    assert logged and logged <= set(ACTION_LABELS), logged - set(ACTION_LABELS)
    tech = users["technician"]
    here = Browser(app)
    here.login(tech.username)
    here.post("/account/password", {"current_password": PASSWORD,
                                    "new_password": "a new one 2026",
                                    "confirm": "a new one 2026"})
    page = html(admin.get("/admin/audit?lang=fa&action=user.password_change"))
    assert "تغییر گذرواژه توسط خود کاربر" in page
    assert ">user.password_change<" not in page.split("<tbody>", 1)[0]  # the filter's option
