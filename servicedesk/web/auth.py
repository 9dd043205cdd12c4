"""Staff login and logout, and the language switcher."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..extensions import db, limiter
from ..services import people

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    remember = BooleanField(_l("Remember me on this computer"))


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user, problem = people.authenticate(form.username.data.strip(), form.password.data)
        if user is not None:
            next_url = _safe_next(request.args.get("next"))
            lang = session.get("lang")
            session.clear()  # a login always starts a new session
            if lang:
                session["lang"] = lang
            session.permanent = True  # PERMANENT_SESSION_LIFETIME: a shift, not a month
            login_user(user, remember=form.remember.data)
            current_app.logger.info("login ok user_id=%s", user.id)
            return redirect(next_url)
        current_app.logger.info("login failed (%s)", problem)
        if problem == "locked":
            flash(_("Too many failed attempts: this account is locked for a few minutes."),
                  "danger")
        else:
            flash(_("Wrong user name or password."), "danger")
    status = 401 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language():
    lang = request.form.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.language = lang
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))
