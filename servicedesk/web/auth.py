"""Staff login, re-authentication and logout, and the language switcher.

Every login, failed or not, is in the audit log (the user name typed, never the password).
Pages that want a fresh login (user and role management, settings) send a session restored
from the remember-me cookie back here to type the password again; logging out ends every
session of the user, so a copy of the session cookie dies with it.
"""
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import (confirm_login, current_user, login_fresh, login_required, login_user,
                         logout_user, user_loaded_from_cookie)
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from wtforms import BooleanField, PasswordField, StringField

from .. import audit
from ..auth import KIOSK, require, start_session_clock
from ..errors import ValidationError
from ..extensions import db, limiter, login_manager
from ..services import people
from .forms import DataRequired, Length

bp = Blueprint("auth", __name__)


@bp.record
def _refresh_view(state):
    login_manager.refresh_view = "auth.login"
    login_manager.needs_refresh_message = _l("Please type your password again to open this "
                                             "page.")
    login_manager.needs_refresh_message_category = "warning"


class OwnPasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"),
                                     validators=[DataRequired(), Length(max=256)])
    new_password = PasswordField(_l("New password"),
                                 validators=[DataRequired(), Length(min=8, max=256)],
                                 description=_l("At least 8 characters."))
    confirm = PasswordField(_l("New password again"),
                            validators=[DataRequired(), Length(max=256)])


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    remember = BooleanField(_l("Remember me on this computer"))


# Where each role starts its shift after logging in: its own worklist (the waiting room's
# device account: the kiosk; its wall screen is opened at /display).
LANDING = (("technician", "workbench.index"), ("reception", "reception.desk"),
           (KIOSK, "reception.kiosk"))


def landing_url(user) -> str:
    return url_for(dict(LANDING).get(getattr(user, "role", None), "main.home"))


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None: never an open redirect. A
    browser reads ``//host``, ``/\\host`` and ``/<tab>/host`` (it drops tabs and line breaks,
    and takes a backslash for a slash) as another site, and so does the URL parser the
    redirect is built with: such a target, or one with a scheme or a host, is refused."""
    if not target or not target.startswith("/") or len(target) > 2000:
        return None
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    return target


def _safe_next(target: str | None, user=None) -> str:
    # The home page (what the login page is sent from when the site is opened) is no choice
    # of the user's: their start page is.
    target = local_path(target)
    if target and target != url_for("main.home"):
        return target
    return landing_url(user if user is not None else current_user)


DEVICE_COOKIE = "sd_device"
DEVICE_COOKIE_DAYS = 365
DEVICE_USERS = 8  # the accounts a shared desk browser keeps trusted (the latest to log in)


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="servicedesk.device")


def _device_users() -> list[int]:
    """The accounts that logged in from this browser (its signed device cookie): a lock from
    failed logins elsewhere does not apply to them here."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        value = _device_signer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return []
    ids = value.get("u") if isinstance(value, dict) else None
    return [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def _remember_device(resp, user):
    ids = [i for i in _device_users() if i != user.id][-(DEVICE_USERS - 1):] + [user.id]
    resp.set_cookie(DEVICE_COOKIE, _device_signer().dumps({"u": ids}),
                    max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True, samesite="Lax",
                    secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return resp


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    # Logged in but not freshly (a remember-me cookie): only the password is asked again.
    reauth = current_user.is_authenticated
    if reauth and login_fresh():
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if reauth:
        form.username.data = current_user.username
    if form.validate_on_submit():
        username = form.username.data.strip()
        user, problem = people.authenticate(username, form.password.data,
                                            trusted_devices=_device_users())
        if user is not None:
            next_url = _safe_next(request.args.get("next"), user)
            if reauth:
                confirm_login()
            else:
                lang = session.get("lang")
                session.clear()  # a login always starts a new session
                if lang:
                    session["lang"] = lang
                session.permanent = True  # PERMANENT_SESSION_LIFETIME: a shift, not a month
                start_session_clock()  # and SESSION_MAX_HOURS at most, however busy
                login_user(user, **_remember(user, form.remember.data))
            current_app.logger.info("login ok user_id=%s", user.id)
            audit.log("login.ok", obj=user, actor=user,
                      after={"reauth": True} if reauth else None, commit=True)
            return _remember_device(redirect(next_url), user)
        # The name only when it is an account's: what is typed into the name box may be a
        # password typed in the wrong box. Another name is kept as a short digest
        # (people.name_in_log), enough to see the same one tried again and again.
        known = people.account_named(username)
        who = username if known else people.name_in_log(username)
        current_app.logger.info("login failed (%s) user_id=%s from %s", problem,
                                known.id if known else None, request.remote_addr)
        audit.log("login.failed", obj=known, after={"username": who, "reason": problem},
                  commit=True)
        if problem == "locked":
            flash(_("Too many failed attempts: this account is locked for a few minutes."),
                  "danger")
        else:
            flash(_("Wrong user name or password."), "danger")
    status = 401 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, reauth=reauth), status


def _remember(user, ticked: bool) -> dict:
    """The remember-me cookie of a login. A kiosk always gets one, for KIOSK_REMEMBER_DAYS
    (no one is at the tablet to log in again after a night, when the session has ended);
    staff get theirs when they tick the box, for REMEMBER_COOKIE_DURATION."""
    if user.role == KIOSK:
        return {"remember": True,
                "duration": timedelta(days=current_app.config["KIOSK_REMEMBER_DAYS"])}
    return {"remember": bool(ticked)}


@user_loaded_from_cookie.connect
def _tie_restored_session(app, user=None, **_kw):
    """A session restored from the remember-me cookie is tied to the browser that restored it
    and lives a shift, as a login's does: Flask-Login does not note the session's identifier
    then, and with SESSION_PROTECTION "strong" the next request took the restored session for
    a stolen one, ending it and deleting the cookie (remember-me lasted one page)."""
    session["_id"] = login_manager._session_identifier_generator()
    session.permanent = True
    start_session_clock()


@bp.post("/logout")
@login_required
def logout():
    # A new session token: this session, its copies and remember-me cookies stop working (the
    # user's other open sessions too: the token is per user).
    current_user.end_sessions()
    audit.log("login.logout", obj=current_user._get_current_object(),
              actor=current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    resp = redirect(url_for("auth.login"))
    # the pages this browser kept of the session (customers' names and numbers) go with it
    resp.headers["Clear-Site-Data"] = '"cache"'
    return resp


@bp.route("/account/password", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])  # the current password is guessed here too
@require("account.password")
def own_password():
    """Change one's own password: the other sessions end, this one goes on."""
    form = OwnPasswordForm()
    if form.validate_on_submit():
        if form.new_password.data != form.confirm.data:
            form.confirm.errors = [_("The two new passwords differ.")]
        else:
            user = current_user._get_current_object()
            try:
                people.change_own_password(user, form.current_password.data,
                                           form.new_password.data)
            except ValidationError as exc:
                for name, problem in exc.fields.items():
                    getattr(form, name).errors = [problem]
            else:
                login_user(user, remember=False)  # the new session token, this browser only
                flash(_("Your password is changed; your other sessions have ended."),
                      "success")
                return redirect(landing_url(user))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status


@bp.post("/language")
def set_language():
    lang = request.form.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
        # a person's language follows them; the kiosk account's screens keep their own
        if current_user.is_authenticated and current_user.role != "kiosk":
            current_user.language = lang
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))
