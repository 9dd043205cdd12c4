"""Administration: users, branches, service types, SMS templates, settings, the role matrix and
the audit log (issue 8).

Branches, settings, roles, API tokens and the audit log are the administrator's, behind a fresh
login (a session restored from a remember-me cookie must log in again); staff accounts are the
manager's too (reception, technicians and kiosks: ``services.admin.may_manage``), behind the
same fresh login; SMS templates and service types are the manager's too.
"""
import json
import re
from datetime import date

from flask import (Blueprint, abort, flash, make_response, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (BooleanField, PasswordField, SelectField, SelectMultipleField, StringField,
                     TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from .. import audit, pickup, signatures, slips
from .. import settings as shop_settings
from ..auth import ROLE_LABELS, require
from ..errors import DomainError
from ..i18n import format_datetime, format_number, localize_digits, parse_date
from ..lifecycle import EVENTS, RECORDS, STATE_LABELS
from ..models import NO_TOKEN_ROLES
from ..notifications import templates as sms_templates
from ..notifications.templates import variables_for
from ..services import admin as svc
from ..services import webhooks as webhook_svc
from ..services import workbench
from .forms import DataRequired, Length

bp = Blueprint("admin", __name__, url_prefix="/admin")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@bp.app_template_filter("audit_value")
def audit_value(x) -> str:
    """A value recorded in the audit log as people read it: yes or no, "none", a number in the
    page's digits, a date in the page's calendar; text as typed, anything else as JSON."""
    if x is True or x is False:
        return _("yes") if x else _("no")
    if x is None:
        return _("none")
    if isinstance(x, (int, float)):
        return format_number(x)
    if isinstance(x, str) and _ISO_DATE.fullmatch(x):
        try:
            return format_datetime(date.fromisoformat(x), "date")
        except ValueError:  # 2026-13-40: as written
            return x
    if isinstance(x, str):
        return x
    return json.dumps(x, ensure_ascii=False)

LANGUAGE_NAMES = {"fa": "فارسی", "en": "English"}


def _show_errors(form, exc: DomainError) -> int:
    """Attach a service's field errors to the form's fields (the rest become a message);
    returns the status the page is answered with."""
    flash(exc.message, "danger")
    for name, problem in (exc.extra.get("fields") or {}).items():
        field = getattr(form, name, None) if form is not None else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, problem]
        else:
            flash(f"{name}: {problem}", "danger")
    return exc.status


def _status(form) -> int:
    return 422 if request.method == "POST" and form.errors else 200


def _save(form, action, done, message=None, check=None):
    """The POST of an edit page: when ``form`` is valid, run ``action()``; on success flash
    ``message`` (text, or a function of the result; default "Saved.") and answer ``done(result)``.
    A refused action puts its errors on the form. ``check()`` (the service's own check of the
    values, which changes nothing) also runs when the form is not valid, so every problem is
    named at once, not the next one after each fix. Returns (the answer, or None to show the
    page again; the status to show it with)."""
    if not form.validate_on_submit():
        if check is not None and request.method == "POST":
            try:
                check()
            except DomainError as exc:
                for name, problem in (exc.extra.get("fields") or {}).items():
                    field = getattr(form, name, None)
                    if field is not None and not field.errors:
                        field.errors = [problem]
        return None, _status(form)
    try:
        result = action()
    except DomainError as exc:
        return None, _show_errors(form, exc)
    text = message(result) if callable(message) else message
    flash(text or _("Saved."), "success")
    return done(result), 200


# --- forms -----------------------------------------------------------------------------------

class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _language_choices():
    return _choices([("", _l("The shop's language")), *LANGUAGE_NAMES.items()])


def _role_choices():
    return _choices((role, ROLE_LABELS[role]) for role in svc.roles_given_by(current_user))


def _branch_choices():
    return _choices([(0, _l("None")),
                     *[(b.id, f"{b.name} ({b.code})") for b in svc.list_branches()]])


class UserEditForm(FlaskForm):
    full_name = StringField(_l("Full name"), validators=[Optional(), Length(max=120)])
    role = SelectField(_l("Role"), validators=[DataRequired()])
    branch_id = SelectField(_l("Branch"), coerce=int, description=_l(
        "Where their desk, bench or kiosk screens are. None: they act on every branch's "
        "tickets, and a desk or kiosk of theirs is the first branch's."))
    language = SelectField(_l("Language"))

    def fill_choices(self):
        self.role.choices = _role_choices()
        self.branch_id.choices = _branch_choices()
        self.language.choices = _language_choices()
        return self


class UserCreateForm(UserEditForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[Optional(), Length(min=8, max=256)],
                             description=_l("Leave empty to generate a random one."))


class PasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[Optional(), Length(min=8, max=256)],
                             description=_l("Leave empty to generate a random one."))


class TokenForm(FlaskForm):
    name = StringField(_l("What will use it"), validators=[DataRequired(), Length(max=80)],
                       description=_l("For example: the shop's website, the accounting program."))


class BranchForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    code = StringField(_l("Ticket number prefix"), validators=[DataRequired(), Length(max=8)],
                       description=_l("Latin letters and digits, e.g. A gives A-00042."))
    hours = TextAreaField(_l("Opening hours"), validators=[Optional(), Length(max=500)])
    active = BooleanField(_l("Active"), default=True)


class WebhookForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=120)],
                       description=_l("For example: the accounting program."))
    url = StringField(_l("Receiver's address (URL)"), validators=[DataRequired(), Length(max=500)],
                      description=_l("https:// (http:// only on this machine or, without Redis, "
                                     "the shop's own network)."))
    every_event = BooleanField(_l("Every ticket event"), default=True)
    events = SelectMultipleField(_l("Only these events"), widget=ListWidget(prefix_label=False),
                                 option_widget=CheckboxInput(), validate_choice=False)
    active = BooleanField(_l("Active"), default=True)


class ServiceTypeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)],
                       description=_l("Stored on tickets; cannot change later."))
    name_fa = StringField(_l("Name in Persian"), validators=[DataRequired(), Length(max=120)])
    name_en = StringField(_l("Name in English"), validators=[DataRequired(), Length(max=120)])
    active = BooleanField(_l("Offered at intake"), default=True)


class TemplateForm(FlaskForm):
    body = TextAreaField(_l("Text"), validators=[DataRequired(),
                                                 Length(max=svc.MAX_TEMPLATE_LENGTH)])
    enabled = BooleanField(_l("Send this SMS"))


def _settings_form_class():
    class SettingsForm(FlaskForm):
        shop_name = StringField(_l("Shop name"), validators=[DataRequired(), Length(max=120)])
        shop_name_en = StringField(
            _l("Shop name in English"), validators=[Optional(), Length(max=120)],
            description=_l("In Latin letters, for English SMS, slips and pages (an English SMS "
                           "with Persian letters in it costs more than twice as many parts). "
                           "Empty: the shop name."))
        shop_phone = StringField(_l("Shop phone"), validators=[Optional(), Length(max=40)])
        shop_address = TextAreaField(_l("Address"), validators=[Optional(), Length(max=300)])
        receipt_terms = TextAreaField(_l("Terms printed on the receipt"),
                                      validators=[Optional(), Length(max=2000)])
        delivery_terms = TextAreaField(_l("Terms printed on the delivery receipt"),
                                       validators=[Optional(), Length(max=2000)])
        money_display = SelectField(_l("Show money in"),
                                    choices=_choices([("toman", _l("toman")),
                                                      ("rial", _l("rial"))]))
        auto_close_days = StringField(
            _l("Close delivered tickets without a survey answer after (days)"),
            validators=[DataRequired(), Length(max=6)])
        remind_estimate_days = StringField(
            _l("Remind the customer of an estimate not answered after (days)"),
            validators=[DataRequired(), Length(max=6)], description=_l("0: no reminder."))
        remind_pickup_days = StringField(
            _l("Remind the customer of a device not collected after (days)"),
            validators=[DataRequired(), Length(max=6)], description=_l("0: no reminder."))
        warranty_days = StringField(
            _l("Work is under warranty for (days after the hand-back)"),
            validators=[DataRequired(), Length(max=6)],
            description=_l("Printed on the delivery receipt; a device back within them counts "
                           "as a return in the reports. 0: no warranty."))
        loaner_overdue_days = StringField(
            _l("A loaner phone is overdue after (days out)"),
            validators=[DataRequired(), Length(max=6)],
            description=_l("Flagged on the loaner phones' list."))
        handback_check = SelectField(
            _l("Confirm who collects a device"),
            choices=_choices(list(pickup.CHECKS.items())),
            # a form without it (a script's, from before the setting) keeps the shop's choice;
            # a value not offered is named by the service's check, with the other fields
            validate_choice=False,
            description=_l("Required: before the hand-back the desk types the pickup code "
                           "printed on the intake receipt, or a code texted to the owner's "
                           "mobile, or a manager confirms the collector with a reason."))
        signature_required = SelectField(
            _l("The customer signs on the counter's screen"),
            choices=_choices(list(signatures.REQUIRED.items())),
            validate_choice=False,  # as handback_check's
            description=_l("For a counter with a tablet or a signature pad: the desk's form "
                           "(and the API) is refused until the customer has signed in its "
                           "box; the signature is printed on the slip. When the screen cannot "
                           "be used, the desk may have the paper slip signed instead and say "
                           "why; the takings report counts and lists those."))
        slip_paper = SelectField(
            _l("Receipts print on"), choices=_choices(list(slips.PAPER_CHOICES.items())),
            validate_choice=False,  # as handback_check's
            description=_l("The intake receipt, the delivery receipt and the till slip, unless "
                           "the desk picks another paper above the slip. On %(a4)s a receipt "
                           "prints twice, the shop's copy and the customer's. The queue slip "
                           "and the shelf label always print on the roll.", a4="A4"))
    for state in shop_settings.TIMED_STATES:
        setattr(SettingsForm, f"limit_{state}", StringField(
            STATE_LABELS[state], validators=[Optional(), Length(max=6)],
            description=_l("Hours; empty: no limit.")))
    return SettingsForm


SettingsForm = _settings_form_class()
SETTINGS_FIELDS = ("shop_name", "shop_name_en", "shop_phone", "shop_address", "receipt_terms",
                   "delivery_terms", "money_display", "auto_close_days",
                   "remind_estimate_days", "remind_pickup_days", "warranty_days",
                   "loaner_overdue_days", "handback_check", "signature_required",
                   "slip_paper")
NUMBER_SETTINGS = ("auto_close_days", "remind_estimate_days", "remind_pickup_days",
                   "warranty_days", "loaner_overdue_days")


class AuditSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a search (GET) changes nothing

    action = SelectField(_l("Action"), validate_choice=False)
    user = StringField(_l("User name"), validators=[Optional(), Length(max=64)])
    date_from = StringField(_l("From"), validators=[Optional(), Length(max=20)],
                            render_kw={"data-date": ""})
    date_to = StringField(_l("To"), validators=[Optional(), Length(max=20)],
                          render_kw={"data-date": ""})


# --- index -----------------------------------------------------------------------------------

@bp.get("/")
@require("admin.templates")
def index():
    return render_template("admin/index.html")


# --- users -----------------------------------------------------------------------------------

def _managed_user(user_id: int):
    """The account of a user's page, if the current user looks after it (a manager: not a
    manager's or administrator's), else 403."""
    user = svc.get_user(user_id)
    if not svc.may_manage(current_user, user):
        abort(403)
    return user


@bp.get("/users")
@require("admin.users", fresh=True)
def users():
    return render_template("admin/users.html", users=svc.list_users(),
                           branches={b.id: b for b in svc.list_branches()},
                           may_manage=lambda user: svc.may_manage(current_user, user))


@bp.route("/users/new", methods=["GET", "POST"])
@require("admin.users", fresh=True)
def user_new():
    form = UserCreateForm().fill_choices()
    if request.method == "GET":  # hired for the branch of who adds them, most often
        form.branch_id.data = current_user.branch_id or 0

    def created(result):
        user, generated = result
        if generated:
            return _secret_page("admin/password_shown.html", user=user, password=generated)
        return redirect(url_for("admin.users"))

    answer, status = _save(form, lambda: svc.create_user(
        current_user, username=form.username.data.strip(), role=form.role.data,
        full_name=form.full_name.data, branch_id=form.branch_id.data or None,
        language=form.language.data or None, password=form.password.data or None),
        created, lambda result: _("User %(name)s created.", name=result[0].username))
    return answer or (render_template("admin/user_new.html", form=form), status)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@require("admin.users", fresh=True)
def user_edit(user_id: int):
    user = _managed_user(user_id)
    form = UserEditForm(obj=user if request.method == "GET" else None).fill_choices()
    if request.method == "GET":
        form.branch_id.data = user.branch_id or 0
        form.language.data = user.language or ""
    answer, status = _save(form, lambda: svc.update_user(
        current_user, user.id, full_name=form.full_name.data, role=form.role.data,
        branch_id=form.branch_id.data or None, language=form.language.data or None),
        lambda _user: redirect(url_for("admin.user_edit", user_id=user.id)))
    return answer or (render_template("admin/user_edit.html", user=user, form=form,
                                      password_form=PasswordForm(), confirm=ConfirmForm(),
                                      tokens=svc.api_tokens(user.id),
                                      takes_tokens=user.role not in NO_TOKEN_ROLES,
                                      held=workbench.held_by(user.id),
                                      token_form=TokenForm(formdata=None)), status)


@bp.post("/users/<int:user_id>/deactivate")
@require("admin.users", fresh=True)
def user_deactivate(user_id: int):
    _managed_user(user_id)
    return _user_action(user_id, svc.deactivate_user, _("The account is deactivated; its "
                                                        "sessions and API tokens no longer "
                                                        "work."))


@bp.post("/users/<int:user_id>/activate")
@require("admin.users", fresh=True)
def user_activate(user_id: int):
    _managed_user(user_id)
    return _user_action(user_id, svc.activate_user, _("The account is active again."))


@bp.post("/users/<int:user_id>/return-tickets")
@require("admin.users", fresh=True)
def user_return_tickets(user_id: int):
    """A technician who left: the tickets they held go back to the repair queue for the
    others to claim."""
    user = _managed_user(user_id)
    return _user_action(user.id, lambda by, uid: workbench.return_to_queue(uid, by),
                        lambda count: ngettext(
                            "%(count)s ticket is back in the repair queue.",
                            "%(count)s tickets are back in the repair queue.", count,
                            count=format_number(count)))


def _user_action(user_id: int, action, done):
    """A button on a user's page (a confirmed POST): do it, say so, back to the page."""
    back = redirect(url_for("admin.user_edit", user_id=user_id))
    answer = _save(ConfirmForm(), lambda: action(current_user, user_id),
                   lambda _result: back, done)[0]
    return answer or back


def _user_page_form(user, form, field, action, done, message: str):
    """A small form on a user's page (a new password, a token): like ``_save``, but its
    field's problems are said on the user's page, where the form is, and the answer goes back
    there unless ``done(result)`` shows something else."""
    back = redirect(url_for("admin.user_edit", user_id=user.id))
    answer = _save(form, action, lambda result: done(result) or back, message)[0]
    for problem in field.errors:
        flash(problem, "danger")
    return answer or back


@bp.post("/users/<int:user_id>/password")
@require("admin.users", fresh=True)
def user_password(user_id: int):
    user = _managed_user(user_id)
    form = PasswordForm()
    return _user_page_form(
        user, form, form.password,
        lambda: svc.reset_password(current_user, user.id, form.password.data or None),
        lambda generated: _secret_page("admin/password_shown.html", user=user,
                                       password=generated) if generated else None,
        _("Password changed; the user's open sessions have ended."))


def _secret_page(template: str, **context):
    """Shows a generated secret once; never cached by the browser or a proxy."""
    resp = make_response(render_template(template, **context))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/users/<int:user_id>/tokens")
@require("admin.manage", fresh=True)
def token_new(user_id: int):
    """Issue an API token for the user: shown once, on a page no cache keeps."""
    user = svc.get_user(user_id)
    form = TokenForm()
    return _user_page_form(
        user, form, form.name,
        lambda: svc.create_api_token(current_user, user.id, form.name.data),
        lambda made: _secret_page("admin/token_shown.html", user=user, token=made[1],
                                  row=made[0]),
        _("API token issued."))


@bp.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
@require("admin.manage", fresh=True)
def token_revoke(user_id: int, token_id: int):
    return _user_action(user_id, lambda by, uid: svc.revoke_api_token(by, uid, token_id),
                        _("The API token is revoked."))


# --- branches --------------------------------------------------------------------------------

@bp.get("/branches")
@require("admin.manage", fresh=True)
def branches():
    rows = [(b, shop_settings.branch_hours(b.id)) for b in svc.list_branches()]
    return render_template("admin/branches.html", rows=rows)


@bp.route("/branches/new", methods=["GET", "POST"], defaults={"branch_id": None})
@bp.route("/branches/<int:branch_id>", methods=["GET", "POST"])
@require("admin.manage", fresh=True)
def branch_edit(branch_id):
    branch = svc.get_branch(branch_id) if branch_id is not None else None
    form = BranchForm()
    if request.method == "GET" and branch is not None:
        form.name.data, form.code.data = branch.name, branch.code
        form.hours.data, form.active.data = shop_settings.branch_hours(branch.id), branch.active
    answer, status = _save(form, lambda: svc.save_branch(
        current_user, branch_id, name=form.name.data, code=form.code.data,
        hours=form.hours.data, active=form.active.data),
        lambda _branch: redirect(url_for("admin.branches")))
    return answer or (render_template("admin/branch_edit.html", form=form, branch=branch),
                      status)


# --- webhooks --------------------------------------------------------------------------------

def _event_label(event: str) -> str:
    """A ticket event's name, or a record's (a refund, a loaner phone lent)."""
    return EVENTS[event].label if event in EVENTS else RECORDS[event]


def _webhook_form(endpoint=None) -> "WebhookForm":
    form = WebhookForm()
    form.events.choices = _choices((e, _event_label(e)) for e in webhook_svc.webhooks.EVENTS)
    if request.method == "GET" and endpoint is not None:
        form.name.data, form.url.data = endpoint.name, endpoint.url
        form.every_event.data = endpoint.events is None
        form.events.data = list(endpoint.events or ())
        form.active.data = endpoint.active
    return form


@bp.get("/webhooks")
@require("admin.manage", fresh=True)
def webhooks():
    return render_template("admin/webhooks.html", rows=webhook_svc.list_endpoints())


@bp.route("/webhooks/new", methods=["GET", "POST"], defaults={"webhook_id": None})
@bp.route("/webhooks/<int:webhook_id>", methods=["GET", "POST"])
@require("admin.manage", fresh=True)
def webhook_edit(webhook_id):
    endpoint = webhook_svc.get_endpoint(webhook_id) if webhook_id is not None else None
    form = _webhook_form(endpoint)
    values = lambda: dict(name=form.name.data, url=form.url.data,  # noqa: E731
                          events=form.events.data, every_event=form.every_event.data)

    def saved(result):
        made, secret = result
        if secret:
            return _secret_page("admin/webhook_secret.html", endpoint=made, secret=secret)
        return redirect(url_for("admin.webhook_edit", webhook_id=made.id))

    answer, status = _save(form, lambda: webhook_svc.save_endpoint(
        webhook_id, active=form.active.data, **values()), saved,
        check=lambda: webhook_svc.check(**values()))
    deliveries = webhook_svc.recent_deliveries(endpoint.id) if endpoint is not None else []
    return answer or (render_template(
        "admin/webhook_edit.html", form=form, endpoint=endpoint, deliveries=deliveries,
        confirm=ConfirmForm(), event_labels={e: _event_label(e) for e in (*EVENTS, *RECORDS)},
        explain_error=webhook_svc.explain_error),
        status)


@bp.post("/webhooks/<int:webhook_id>/rotate")
@require("admin.manage", fresh=True)
def webhook_rotate(webhook_id: int):
    """A new secret, shown once; the old one stops signing at once."""
    webhook_svc.get_endpoint(webhook_id)
    answer = _save(ConfirmForm(), lambda: webhook_svc.rotate_secret(webhook_id),
                   lambda made: _secret_page("admin/webhook_secret.html", endpoint=made[0],
                                             secret=made[1]),
                   _("A new secret is made; the old one no longer signs."))[0]
    return answer or redirect(url_for("admin.webhook_edit", webhook_id=webhook_id))


@bp.post("/webhooks/<int:webhook_id>/delete")
@require("admin.manage", fresh=True)
def webhook_delete(webhook_id: int):
    """Delete the endpoint (after the page's confirmation): the deliveries still waiting are
    cancelled; its page stays, with its deliveries, among the deleted ones."""
    webhook_svc.get_endpoint(webhook_id)

    def deleted(made) -> str:
        cancelled = made[1]
        if not cancelled:
            return _("The webhook is deleted.")
        return ngettext("The webhook is deleted; %(count)s delivery still waiting is "
                        "cancelled.",
                        "The webhook is deleted; %(count)s deliveries still waiting are "
                        "cancelled.", cancelled, count=format_number(cancelled))

    answer = _save(ConfirmForm(), lambda: webhook_svc.delete_endpoint(webhook_id),
                   lambda _made: redirect(url_for("admin.webhooks")), deleted)[0]
    return answer or redirect(url_for("admin.webhook_edit", webhook_id=webhook_id))


@bp.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/resend")
@require("admin.manage", fresh=True)
def webhook_resend(webhook_id: int, delivery_id: int):
    back = redirect(url_for("admin.webhook_edit", webhook_id=webhook_id))
    answer = _save(ConfirmForm(), lambda: webhook_svc.resend(webhook_id, delivery_id),
                   lambda _row: back, _("The delivery is sent again."))[0]
    return answer or back


# --- service types ---------------------------------------------------------------------------

@bp.get("/service-types")
@require("admin.templates")
def service_types():
    return render_template("admin/service_types.html", rows=svc.service_type_rows())


@bp.route("/service-types/new", methods=["GET", "POST"], defaults={"code": None})
@bp.route("/service-types/<code>", methods=["GET", "POST"])
@require("admin.templates")
def service_type_edit(code):
    row = None
    if code is not None:
        row = next((r for r in svc.service_type_rows() if r["code"] == code), None)
        if row is None:
            abort(404)
    form = ServiceTypeForm()
    if row is not None:
        form.code.data = row["code"]  # fixed once created
        if request.method == "GET":
            form.name_fa.data, form.name_en.data = row["name_fa"], row["name_en"]
            form.active.data = row["active"]
    answer, status = _save(form, lambda: svc.save_service_type(
        current_user, code, code=form.code.data.strip(), name_fa=form.name_fa.data,
        name_en=form.name_en.data, active=form.active.data),
        lambda _row: redirect(url_for("admin.service_types")))
    return answer or (render_template("admin/service_type_edit.html", form=form, row=row),
                      status)


# --- SMS templates ---------------------------------------------------------------------------

def _event_labels():
    return sms_templates.event_labels()


@bp.get("/templates")
@require("admin.templates")
def templates():
    return render_template("admin/templates.html", rows=svc.template_rows(),
                           event_labels=_event_labels(), language_names=LANGUAGE_NAMES)


@bp.route("/templates/<event>/<language>", methods=["GET", "POST"])
@require("admin.templates")
def template_edit(event: str, language: str):
    row = svc.template_row(event, language)
    form = TemplateForm()
    if request.method == "GET":
        form.body.data, form.enabled.data = row["body"], row["enabled"]
    if "preview" in request.form:
        form.validate_on_submit()  # the preview button (no script): show what it would send
        answer, status = None, _status(form)
    else:
        answer, status = _save(form, lambda: svc.save_template(
            current_user, event, language, body=form.body.data, enabled=form.enabled.data),
            lambda _template: redirect(url_for("admin.templates")))
    return answer or (render_template("admin/template_edit.html", form=form, row=row,
                                      preview=svc.preview(language, form.body.data, event),
                                      variables=variables_for(event), event_label=_event_labels()[event],
                                      language_name=LANGUAGE_NAMES.get(language, language),
                                      confirm=ConfirmForm()), status)


@bp.post("/templates/<event>/<language>/preview")
@require("admin.templates")
def template_preview(event: str, language: str):
    """The live preview (htmx): the text for a sample ticket and its SMS count."""
    svc.template_row(event, language)  # 404 for an unknown template
    return render_template("admin/_preview.html",
                           preview=svc.preview(language, request.form.get("body", ""), event))


@bp.post("/templates/<event>/<language>/reset")
@require("admin.templates")
def template_reset(event: str, language: str):
    if ConfirmForm().validate_on_submit():
        svc.reset_template(current_user, event, language)
        flash(_("Back to the shipped text."), "success")
    return redirect(url_for("admin.template_edit", event=event, language=language))


# --- shop settings ---------------------------------------------------------------------------

@bp.route("/settings", methods=["GET", "POST"])
@require("admin.manage", fresh=True)
def shop():
    form = SettingsForm()
    if request.method == "GET":
        values = svc.current_settings()
        for key in SETTINGS_FIELDS:  # numbers in the page's digits, as they are read back
            getattr(form, key).data = (localize_digits(values[key]) if key in NUMBER_SETTINGS
                                       else values[key])
        for state in shop_settings.TIMED_STATES:
            hours = (values["state_time_limits"] or {}).get(state)
            getattr(form, f"limit_{state}").data = "" if hours is None else localize_digits(hours)

    def values() -> dict:
        return {**{key: getattr(form, key).data for key in SETTINGS_FIELDS},
                "state_time_limits": {state: getattr(form, f"limit_{state}").data
                                      for state in shop_settings.TIMED_STATES}}

    answer, status = _save(form, lambda: svc.update_settings(current_user, values()),
                           lambda _values: redirect(url_for("admin.shop")),
                           check=lambda: svc.clean_settings(values()))
    return answer or (render_template("admin/settings.html", form=form,
                                      timed_states=shop_settings.TIMED_STATES), status)


# --- role matrix and audit log ---------------------------------------------------------------

@bp.get("/roles")
@require("admin.manage", fresh=True)
def roles():
    return render_template("admin/roles.html", matrix=svc.role_matrix(),
                           state_labels=STATE_LABELS)


ACTION_LABELS = {
    "login.ok": _l("Logged in"), "login.failed": _l("Failed login"),
    "login.logout": _l("Logged out"),
    "user.create": _l("User created"), "user.update": _l("User changed"),
    "user.deactivate": _l("User deactivated"), "user.activate": _l("User activated"),
    "user.password_reset": _l("Password reset"),
    "user.password_change": _l("Own password changed"), "token.revoke": _l("API token revoked"),
    "token.create": _l("API token issued"),
    "branch.create": _l("Branch created"), "branch.update": _l("Branch changed"),
    "service_type.create": _l("Service type created"),
    "service_type.update": _l("Service type changed"),
    "setting.update": _l("Setting changed"), "template.update": _l("SMS template changed"),
    "template.reset": _l("SMS template reset"), "slip.print": _l("Slip printed"),
    "report.export": _l("Report exported"), "customer.rename": _l("Customer renamed"),
    "customer.phone": _l("Customer's mobile number corrected"),
    "survey.followup": _l("Complaint follow-up changed"),
    "customer.sms": _l("Customer's SMS switched"), "sms.resend": _l("SMS sent again"),
    "till.count": _l("Till counted"),
    "loaner.create": _l("Loaner phone added"), "loaner.update": _l("Loaner phone changed"),
    "loaner.retire": _l("Loaner phone retired"),
    "loaner.mark_fine": _l("Loaner phone marked fine"),
    "webhook.create": _l("Webhook added"), "webhook.update": _l("Webhook changed"),
    "webhook.rotate": _l("Webhook secret rotated"),
    "webhook.resend": _l("Webhook delivery sent again"),
    "webhook.delete": _l("Webhook deleted"),
}
# What an audit row is about, in words (the table or kind it records).
OBJECT_LABELS = {
    "users": _l("User"), "branches": _l("Branch"), "service_types": _l("Service type"),
    "service_type": _l("Service type"), "settings": _l("Setting"), "setting": _l("Setting"),
    "sms_template": _l("SMS template"), "sms_templates": _l("SMS template"),
    "api_tokens": _l("API token"), "customers": _l("Customer"), "tickets": _l("Ticket"),
    "visits": _l("Queue number"), "report": _l("Report"),
    "survey_responses": _l("Survey answer"), "till_counts": _l("Till count"),
    "loaners": _l("Loaner phone"), "webhook_endpoints": _l("Webhook"),
    "webhook_deliveries": _l("Webhook delivery"),
}
ACTION_FAMILIES = {"login": _l("Logins"), "user": _l("Users"), "customer": _l("Customers"),
                   "setting": _l("Settings"),
                   "template": _l("SMS templates"), "branch": _l("Branches"),
                   "service_type": _l("Service types"), "slip": _l("Prints"),
                   "report": _l("Exports"), "survey": _l("Complaints"), "sms": _l("SMS"),
                   "till": _l("Till"), "loaner": _l("Loaner phones"),
                   "webhook": _l("Webhooks")}
PAGE_SIZE = 100


@bp.get("/audit")
@require("admin.manage", fresh=True)
def audit_log():
    form = AuditSearchForm(request.args)
    known = sorted(set(ACTION_LABELS) | set(audit.actions()))
    form.action.choices = _choices([("", _l("Any")), *ACTION_FAMILIES.items(),
                                    *[(a, ACTION_LABELS.get(a, a)) for a in known]])
    dates = {}
    form.validate()
    for name in ("date_from", "date_to"):
        raw = getattr(form, name).data
        if raw:
            try:
                dates[name] = parse_date(raw)
            except ValueError as exc:
                getattr(form, name).errors = [*getattr(form, name).errors, str(exc)]
    try:
        page = max(int(request.args.get("page", 1)), 1)
    except ValueError:
        page = 1
    action = form.action.data if form.action.data in {c.value for c in form.action.choices} \
        else None
    rows, more = audit.search(action=action or None, user=form.user.data or None,
                              date_from=dates.get("date_from"), date_to=dates.get("date_to"),
                              limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("admin/audit.html", form=form, rows=rows, page=page, more=more,
                           args=args, action_labels=ACTION_LABELS, object_labels=OBJECT_LABELS,
                           object_names=audit.object_names(rows))
