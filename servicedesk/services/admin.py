"""Administration actions: users, branches, service types, SMS templates and shop settings.

Each action checks its input, changes the rows, writes its audit record (before and after) and
commits once; a refused action writes nothing.
"""
from __future__ import annotations

import re
import secrets
from contextlib import contextmanager
from typing import Any, Optional

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .. import audit, pickup, signatures, slips
from .. import settings as shop_settings
from .. import validation as v
from ..errors import Conflict, Forbidden, NotFound, ValidationError
from ..extensions import db
from ..i18n import format_datetime, format_money, localize_digits, segments
from ..models import NO_TOKEN_ROLES, ROLES, ApiToken, Branch, SmsTemplate, Ticket, User, utcnow
from ..models.admin import ServiceType, Setting
from ..notifications import templates
from . import people

CODE_RE = re.compile(r"^[A-Za-z0-9]{1,8}$")
SERVICE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
USERNAME_RE = people.USERNAME_RE
MAX_TEMPLATE_LENGTH = 1000
# Ids are INTEGER columns (32-bit on PostgreSQL): a larger one names no row, and binding it would
# be a database error instead of "not found".
MAX_ID = 2**31 - 1


def _by_id(model, ident):
    if isinstance(ident, bool) or not isinstance(ident, int) or not 0 < ident <= MAX_ID:
        return None
    return db.session.get(model, ident)


@contextmanager
def committing():
    """Commit on success; roll back on any error (a unique key lost to a race is Conflict)."""
    try:
        yield
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(_("Someone else saved a conflicting change at the same time; reload "
                         "and try again.")) from None
    except Exception:
        db.session.rollback()
        raise
    finally:
        shop_settings.invalidate()


def _check(errors: dict) -> None:
    if errors:
        raise ValidationError(_("Some fields are not valid."), fields=errors)


def _take(errors: dict, name: str, check, raw, *args, **kwargs):
    try:
        return check(raw, *args, **kwargs)
    except ValueError as exc:
        errors[name] = str(exc)
        return None


# --- users -----------------------------------------------------------------------------------

def _user_values(user: User) -> dict:
    return {"username": user.username, "full_name": user.full_name, "role": user.role,
            "branch_id": user.branch_id, "language": user.language, "active": user.active}


# The accounts a manager looks after (DESIGN: the manager's "users"): a technician who left, a new
# receptionist, a lost password, a stolen kiosk tablet. Managers' and administrators' accounts,
# and giving anyone those roles, stay the administrator's: a manager cannot raise an account,
# their own included, above what they hold, nor take over a peer's.
STAFF_A_MANAGER_MANAGES = ("reception", "technician", "kiosk")


def may_manage(by: User, user: Optional[User] = None, role: Optional[str] = None) -> bool:
    """Whether ``by`` may change ``user`` (when given) and give an account ``role`` (when
    given): an administrator any, a manager the staff of ``STAFF_A_MANAGER_MANAGES``."""
    if by.role == "admin":
        return True
    if by.role != "manager":
        return False
    return ((user is None or user.role in STAFF_A_MANAGER_MANAGES)
            and (role is None or role in STAFF_A_MANAGER_MANAGES))


def roles_given_by(by: User) -> tuple:
    """The roles ``by`` may give an account (the role list of the user forms)."""
    return tuple(r for r in ROLES if may_manage(by, role=r))


def _check_manages(by: User, user: Optional[User] = None, role: Optional[str] = None) -> None:
    if not may_manage(by, user, role):
        raise Forbidden(_("Managers' and administrators' accounts are the administrator's: "
                          "ask an administrator."))


def get_user(user_id) -> User:
    user = _by_id(User, user_id)
    if user is None:
        raise NotFound(_("No such user."))
    return user


def list_users() -> list[User]:
    return db.session.scalars(select(User).order_by(User.active.desc(), User.username)).all()


def _branch_or_none(errors: dict, branch_id) -> Optional[Branch]:
    if branch_id in (None, "", 0):
        return None
    branch = _by_id(Branch, branch_id)
    if branch is None:
        errors["branch_id"] = _("No such branch.")
    return branch


def _clean_user_fields(errors: dict, full_name, role, branch_id, language):
    full_name = _take(errors, "full_name", v.text, full_name, max_len=120, required=False) or ""
    if role not in ROLES:
        errors["role"] = _("Must be one of: %(options)s.", options=", ".join(ROLES))
    branch = _branch_or_none(errors, branch_id)
    if language in ("", None):
        language = None
    elif language not in current_app.config["LANGUAGES"]:
        errors["language"] = _("Must be one of: %(options)s.",
                               options=", ".join(current_app.config["LANGUAGES"]))
    return full_name, branch, language


def _active_admins(excluding: Optional[int] = None) -> int:
    query = select(func.count(User.id)).where(User.role == "admin", User.active.is_(True))
    if excluding is not None:
        query = query.where(User.id != excluding)
    return db.session.scalar(query) or 0


def new_password() -> str:
    """A random initial password, shown once to the admin who hands it over."""
    return secrets.token_urlsafe(12)


def password_set_for_another(by: User, user: Optional[User] = None,
                             user_role: Optional[str] = None) -> bool:
    """Whether a password ``by`` sets is one its owner must change at their next page: set for
    another person (who was handed it), not for oneself nor for a kiosk (a device's account,
    whose password the person who set it types on the tablet)."""
    role = user.role if user is not None else user_role
    return role != "kiosk" and (user is None or user.id != by.id)


def create_user(by: User, *, username, role, full_name="", branch_id=None, language=None,
                password: Optional[str] = None) -> tuple[User, Optional[str]]:
    """A new staff account. Without a password a random one is generated and returned (to be
    shown once); with one, None is returned in its place."""
    errors: dict = {}
    username = _take(errors, "username", v.text, username, max_len=64)
    if username and not USERNAME_RE.match(username):
        errors["username"] = _("Letters, digits and . _ @ + - only (2 to 64 characters).")
    full_name, branch, language = _clean_user_fields(errors, full_name, role, branch_id,
                                                     language)
    if role in ROLES and not may_manage(by, role=role):
        errors["role"] = _("Must be one of: %(options)s.", options=", ".join(roles_given_by(by)))
    generated = None
    if not password:
        password = generated = new_password()
    try:
        people.check_password_rules(password, (username, full_name))
    except ValidationError as exc:
        errors.update(exc.fields)
    _check(errors)
    with committing():
        # "Sara" beside "sara": two accounts that staff (and logins) would mix up
        taken = db.session.scalar(select(User.username).where(
            func.lower(User.username) == func.lower(username)))
        if taken is not None:
            raise ValidationError(_("Some fields are not valid."),
                                  fields={"username": _("A user with this name already "
                                                        "exists: %(name)s.", name=taken)})
        user = User(username=username, role=role, full_name=full_name, branch=branch,
                    language=language, password_hash=people._hasher().hash(password),
                    session_token=secrets.token_hex(32), active=True,
                    password_change_due=password_set_for_another(by, user_role=role))
        db.session.add(user)
        db.session.flush()
        audit.log("user.create", obj=user, after=_user_values(user))
    return user, generated


def update_user(by: User, user_id: int, *, full_name, role, branch_id, language) -> User:
    """Change a user's name, role, branch or language."""
    errors: dict = {}
    full_name, branch, language = _clean_user_fields(errors, full_name, role, branch_id,
                                                     language)
    _check(errors)
    with committing():
        user = get_user(user_id)
        _check_manages(by, user)
        if role in ROLES and not may_manage(by, role=role):
            raise ValidationError(_("Some fields are not valid."), fields={"role": _(
                "Must be one of: %(options)s.", options=", ".join(roles_given_by(by)))})
        if user.role == "admin" and role != "admin" and user.active and not _active_admins(
                excluding=user.id):
            raise Conflict(_("This is the last active administrator: make someone else an "
                             "administrator first."))
        before = _user_values(user)
        user.full_name, user.role, user.branch, user.language = full_name, role, branch, language
        db.session.flush()
        old, new = audit.changes(before, _user_values(user))
        if user.role != before["role"]:
            user.end_sessions()  # a new role: sessions opened with the old one end
            if user.role in NO_TOKEN_ROLES:  # no token for them (create_api_token)
                revoked = _revoke_tokens(user)
                if revoked:
                    new = {**new, "revoked_api_keys": revoked}
        if new:
            audit.log("user.update", obj=user, before=old, after=new)
    return user


def _revoke_tokens(user: User) -> int:
    """Revoke every API token of ``user`` still working; how many."""
    return db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount


def deactivate_user(by: User, user_id: int) -> User:
    """Disable an account: its open sessions end (new session token) and its API tokens are
    revoked."""
    with committing():
        user = get_user(user_id)
        if user.id == by.id:
            raise Conflict(_("You cannot deactivate your own account."))
        _check_manages(by, user)
        if user.role == "admin" and user.active and not _active_admins(excluding=user.id):
            raise Conflict(_("This is the last active administrator."))
        if not user.active:
            return user
        user.active = False
        user.end_sessions()
        revoked = _revoke_tokens(user)
        audit.log("user.deactivate", obj=user, before={"active": True},
                  after={"active": False, "revoked_api_keys": revoked})
    return user


def activate_user(by: User, user_id: int) -> User:
    with committing():
        user = get_user(user_id)
        _check_manages(by, user)
        if user.active:
            return user
        user.active = True
        user.failed_logins = 0
        user.device_failed_logins = 0
        user.locked_until = None
        audit.log("user.activate", obj=user, before={"active": False}, after={"active": True})
    return user


def reset_password(by: User, user_id: int, password: Optional[str] = None) -> Optional[str]:
    """Set a new password (a random one when none is given, returned to be shown once); the
    user's open sessions end and a lockout is lifted."""
    generated = None
    if not password:
        password = generated = new_password()
    with committing():
        user = get_user(user_id)
        _check_manages(by, user)
        people.check_password_rules(password, (user.username, user.full_name))
        user.password_hash = people._hasher().hash(password)
        user.password_change_due = password_set_for_another(by, user)
        user.end_sessions()
        user.failed_logins = 0
        user.device_failed_logins = 0
        user.locked_until = None
        # Only the fact: never the password.
        audit.log("user.password_reset", obj=user, after={"generated": generated is not None})
    return generated


def api_tokens(user_id: int) -> list[ApiToken]:
    return db.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                              .order_by(ApiToken.id.desc())).all()


def create_api_token(by: User, user_id: int, name: Any) -> tuple[ApiToken, str]:
    """A new API token for an active user, named for what will use it (the till, the
    website); recorded in the audit log. Returns the row and the token, shown once."""
    errors: dict = {}
    name = _take(errors, "name", v.text, name, max_len=80)
    _check(errors)
    with committing():
        user = get_user(user_id)
        if not user.active:
            raise ValidationError(_("A deactivated user cannot have API tokens."))
        if user.role == "admin":  # staff pages take tokens too: it would open every one
            raise ValidationError(_("An administrator's token would open every page: issue "
                                    "it to a reception, technician or manager account."))
        if user.role in NO_TOKEN_ROLES:
            raise ValidationError(_("A kiosk account has no use for an API token: the API "
                                    "refuses it everything."))
        token, raw = people.new_token(user, name)
        db.session.flush()
        audit.log("token.create", obj=token, after={"user_id": user.id, "name": name})
    return token, raw


def revoke_api_token(by: User, user_id: int, token_id: int) -> None:
    """Revoke one of a user's API tokens (its hash stays, so it can never work again)."""
    with committing():
        token = _by_id(ApiToken, token_id)
        if token is None or token.user_id != user_id:
            raise NotFound(_("No such API token."))
        if token.revoked_at is not None:
            return
        token.revoked_at = utcnow()
        audit.log("token.revoke", obj=token, before={"revoked": False},
                  after={"revoked": True, "user_id": user_id, "name": token.name})


# --- branches --------------------------------------------------------------------------------

def list_branches() -> list[Branch]:
    return db.session.scalars(select(Branch).order_by(Branch.id)).all()


def get_branch(branch_id) -> Branch:
    branch = _by_id(Branch, branch_id)
    if branch is None:
        raise NotFound(_("No such branch."))
    return branch


def _set(key: str, value: Any) -> Any:
    """Store a setting in the current transaction; returns its previous stored value."""
    row = db.session.get(Setting, key)
    old = row.value if row is not None else None
    if row is None:
        db.session.add(Setting(key=key, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()
    return old


def _branch_values(branch: Branch) -> dict:
    return {"name": branch.name, "code": branch.code, "active": branch.active,
            "hours": shop_settings.branch_hours(branch.id) if branch.id else ""}


def save_branch(by: User, branch_id: Optional[int], *, name, code, hours="",
                active=True) -> Branch:
    """Create (``branch_id`` None) or change a branch: name, ticket-number prefix, hours."""
    errors: dict = {}
    name = _take(errors, "name", v.text, name, max_len=120)
    code = _take(errors, "code", v.text, code, max_len=8)
    if code and not CODE_RE.match(code):
        errors["code"] = _("Latin letters and digits only (at most 8), e.g. A or B: the code "
                           "starts every ticket number.")
    hours = _take(errors, "hours", v.text, hours, max_len=500, required=False) or ""
    _check(errors)
    code = code.upper()
    with committing():
        branch = get_branch(branch_id) if branch_id is not None else None
        for column, value, field in ((Branch.name, name, "name"), (Branch.code, code, "code")):
            query = select(Branch.id).where(func.lower(column) == value.lower())
            if branch is not None:
                query = query.where(Branch.id != branch.id)
            if db.session.scalar(query):
                errors[field] = _("Another branch already uses this.")
        # Ticket numbers are the code and the branch's own count: a code another branch's
        # tickets carry (one it had before) would give numbers already taken.
        used = select(Ticket.id).where(Ticket.number.like(f"{code}-%")).limit(1)
        if branch is not None:
            used = used.where(Ticket.branch_id != branch.id)
        if "code" not in errors and db.session.scalar(used):
            errors["code"] = _("Tickets of another branch already carry this code; choose "
                               "another.")
        _check(errors)
        if branch is not None and branch.active and not active and not db.session.scalar(
                select(func.count(Branch.id)).where(Branch.active.is_(True),
                                                    Branch.id != branch.id)):
            raise Conflict(_("This is the only active branch."))
        before = _branch_values(branch) if branch is not None else None
        if branch is None:
            branch = Branch(name=name, code=code, active=bool(active))
            db.session.add(branch)
        else:
            branch.name, branch.code, branch.active = name, code, bool(active)
        db.session.flush()
        _set(f"{shop_settings.BRANCH_HOURS}{branch.id}", hours)
        shop_settings.invalidate()
        after = {"name": name, "code": code, "active": bool(active), "hours": hours}
        if before is None:
            audit.log("branch.create", obj=branch, after=after)
        else:
            old, new = audit.changes(before, after)
            if new:
                audit.log("branch.update", obj=branch, before=old, after=new)
    return branch


# --- service types ---------------------------------------------------------------------------

def service_type_rows() -> list[dict]:
    return shop_settings.service_types(active_only=False)


def _materialize_service_types() -> None:
    """The first edit of the list starts from the built-in types, so adding one type never
    hides the others from the intake form."""
    if db.session.scalar(select(func.count(ServiceType.id))):
        return
    for row in shop_settings.service_types(active_only=False):
        db.session.add(ServiceType(**row))
    db.session.flush()


def save_service_type(by: User, existing_code: Optional[str], *, code, name_fa, name_en,
                      active=True) -> dict:
    """Create (``existing_code`` None) or change a service type. The code is what tickets
    store, so it cannot change once created."""
    errors: dict = {}
    name_fa = _take(errors, "name_fa", v.text, name_fa, max_len=120)
    name_en = _take(errors, "name_en", v.text, name_en, max_len=120)
    if existing_code is None:
        code = _take(errors, "code", v.text, code, max_len=40)
        if code and not SERVICE_CODE_RE.match(code):
            errors["code"] = _("Lower-case letters, digits and _ only, starting with a "
                               "letter.")
    _check(errors)
    with committing():
        _materialize_service_types()
        if existing_code is None:
            if db.session.scalar(select(ServiceType.id).where(ServiceType.code == code)):
                raise ValidationError(_("Some fields are not valid."),
                                      fields={"code": _("Another service type already uses "
                                                        "this.")})
            row = ServiceType(code=code, name_fa=name_fa, name_en=name_en, active=bool(active))
            db.session.add(row)
            db.session.flush()
            audit.log("service_type.create", obj=("service_type", code),
                      after={"code": code, "name_fa": name_fa, "name_en": name_en,
                             "active": bool(active)})
        else:
            row = db.session.scalar(select(ServiceType).where(ServiceType.code == existing_code))
            if row is None:
                raise NotFound(_("No such service type."))
            before = {"name_fa": row.name_fa, "name_en": row.name_en, "active": row.active}
            row.name_fa, row.name_en, row.active = name_fa, name_en, bool(active)
            old, new = audit.changes(before, {"name_fa": name_fa, "name_en": name_en,
                                              "active": bool(active)})
            if new:
                audit.log("service_type.update", obj=("service_type", row.code), before=old,
                          after=new)
    shop_settings.invalidate()
    return {"code": row.code, "name_fa": row.name_fa, "name_en": row.name_en,
            "active": row.active}


# --- SMS templates ---------------------------------------------------------------------------

def template_events() -> list[str]:
    return list(templates.DEFAULTS)


def languages() -> tuple:
    return tuple(current_app.config["LANGUAGES"])


def _check_template_target(event: str, language: str) -> None:
    if event not in templates.DEFAULTS or language not in languages():
        raise NotFound(_("No such template."))


def template_rows() -> list[dict]:
    """Every (event, language) with its body, whether it is on and whether it was edited (or,
    for a variant such as the revised estimate's, the SMS whose text or switch it follows), and
    what is wrong with a text saved before a check it fails was made (a variable the event
    never fills), so the shop can mend it."""
    stored = {(r.event, r.language): r for r in db.session.scalars(select(SmsTemplate))}
    rows = []
    for event in template_events():
        for language in languages():
            row = stored.get((event, language))
            body = row.body if row else templates.default_body(event, language)
            problem = None
            if row is not None:
                try:
                    templates.check_body(body, event)
                except ValueError as exc:
                    problem = str(exc)
            enabled, follows = (row.enabled if row else True), None
            source, sent = templates.text_source(event, language)
            if row is None and (source != event or not sent):
                # a variant following the SMS the shop set (its words, or its switch)
                # (the SMS it follows may itself follow the one the shop set: its switch)
                follows = templates.FOLLOWS[event][0]
                base = stored.get((source, language))
                body = base.body if source != event else body
                enabled = sent and (source == event or base.enabled)
            rows.append({"event": event, "language": language, "body": body,
                         "enabled": enabled, "edited": row is not None, "follows": follows,
                         "segments": segments(body), "problem": problem})
    return rows


def template_row(event: str, language: str) -> dict:
    _check_template_target(event, language)
    row = db.session.scalar(select(SmsTemplate).where(SmsTemplate.event == event,
                                                      SmsTemplate.language == language))
    return {"event": event, "language": language,
            "body": row.body if row else templates.default_body(event, language),
            "default": templates.default_body(event, language),
            "enabled": row.enabled if row else True, "edited": row is not None}


def check_template_body(body: Any, event: Optional[str] = None) -> str:
    """A template body that can be sent: text, only the event's {variables} (all of them when
    no event is given), no format tricks ({device:>999}, {device!r})."""
    if not isinstance(body, str) or not body.strip():
        raise ValidationError(_("Some fields are not valid."),
                              fields={"body": _("This field is required.")})
    body = body.strip()
    if len(body) > MAX_TEMPLATE_LENGTH:
        raise ValidationError(_("Some fields are not valid."),
                              fields={"body": _("Too long (at most %(n)s characters).",
                                                n=MAX_TEMPLATE_LENGTH)})
    try:
        templates.check_body(body, event)
    except ValueError as exc:
        # said once, under the text (the page's banner only says that something is wrong)
        raise ValidationError(_("Some fields are not valid."), fields={"body": str(exc)}) \
            from None
    return body


def sample_context(language: str) -> dict:
    """What the preview fills the variables with: a made-up ticket, in ``language``."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "https://shop.example").rstrip("/")
    fa = language == "fa"
    return {
        "customer_name": "نرگس رضایی" if fa else "Narges Rezaei",
        "ticket_number": localize_digits("A-00042", locale=language),
        "device": "Samsung Galaxy A54",
        "tracking_url": f"{base}/t/7K3QX9P2AB",
        "survey_url": f"{base}/s/7K3QX9P2AB",
        "estimate_total": format_money(14_000_000, locale=language,
                                       unit=shop_settings.get("money_display")),
        "amount_due": format_money(14_000_000, locale=language,
                                   unit=shop_settings.get("money_display")),
        # an estimate with alternatives: each and its total (templates.estimate_choices)
        "estimate_choices": " / ".join(
            f"{name} " + format_money(total, locale=language,
                                      unit=shop_settings.get("money_display"))
            for name, total in ((("ال‌سی‌دی اصلی", 50_000_000), ("ال‌سی‌دی کپی", 33_000_000))
                                if fa else (("Original display", 50_000_000),
                                            ("Copy display", 33_000_000)))),
        "promised_date": format_datetime(utcnow(), "date", locale=language),
        "queue_position": localize_digits(3, locale=language),
        "reason": "قطعه موجود نیست" if fa else "the part is not available",
        "part": "LCD",
        "pickup_code": localize_digits("482913", locale=language),
        "one_time_code": localize_digits("731065", locale=language),
        "shop_name": templates.shop_value("shop_name", language),
        "shop_phone": templates.shop_value("shop_phone", language),
        "label": localize_digits("R-012", locale=language),
        "ahead": localize_digits(4, locale=language),
        "counter": localize_digits(2, locale=language),
    }


def preview(language: str, body: Any, event: Optional[str] = None) -> dict:
    """The body rendered for a sample ticket (or queue number), its encoding and SMS count, how
    it reads where a variable it uses is empty, or the problem."""
    if language not in languages():
        language = languages()[0]
    try:
        body = check_template_body(body, event)
    except ValidationError as exc:
        return {"text": "", "error": exc.fields.get("body") or exc.message,
                "encoding": None, "count": 0, "if_empty": []}
    values = sample_context(language)
    text = templates.fill(body, values)
    encoding, count = segments(text)
    used = templates.placeholders(body)
    # how it reads for a ticket where a variable it uses is empty (no promised date, ...)
    if_empty = [{"when": str(when), "text": templates.fill(body, templates.fill_in_words(
                    {**values, name: ""}, event, language))}
                for name, (when, _instead) in templates.maybe_empty(event).items()
                if name in used]
    return {"text": text, "error": None, "encoding": encoding, "count": count,
            "if_empty": if_empty}


def save_template(by: User, event: str, language: str, *, body, enabled: bool) -> SmsTemplate:
    """Store the text of one event's SMS in one language and whether it is sent."""
    _check_template_target(event, language)
    # a text switched off sends nothing: it may keep a variable a later check refuses
    body = check_template_body(body, event if enabled else None)
    with committing():
        row = db.session.scalar(select(SmsTemplate).where(SmsTemplate.event == event,
                                                          SmsTemplate.language == language))
        before = ({"body": row.body, "enabled": row.enabled} if row else
                  {"body": templates.default_body(event, language), "enabled": True})
        if row is None:
            row = SmsTemplate(event=event, language=language, body=body, enabled=bool(enabled))
            db.session.add(row)
        else:
            row.body, row.enabled = body, bool(enabled)
        row.updated_at = utcnow()
        old, new = audit.changes(before, {"body": body, "enabled": bool(enabled)})
        if new:
            audit.log("template.update", obj=("sms_template", f"{event}:{language}"),
                      before=old, after=new)
    return row


def reset_template(by: User, event: str, language: str) -> None:
    """Back to the shipped text (and on)."""
    _check_template_target(event, language)
    with committing():
        row = db.session.scalar(select(SmsTemplate).where(SmsTemplate.event == event,
                                                          SmsTemplate.language == language))
        if row is None:
            return
        before = {"body": row.body, "enabled": row.enabled}
        db.session.delete(row)
        audit.log("template.reset", obj=("sms_template", f"{event}:{language}"),
                  before=before, after={"body": templates.default_body(event, language),
                                        "enabled": True})


# --- shop settings ---------------------------------------------------------------------------

SHOP_KEYS = ("shop_name", "shop_name_en", "shop_phone", "shop_address", "receipt_terms",
             "delivery_terms", "money_display", "auto_close_days", "remind_estimate_days",
             "remind_pickup_days", "warranty_days", "loaner_overdue_days", "handback_check",
             "signature_required", "slip_paper", "state_time_limits")


def current_settings() -> dict:
    return {key: shop_settings.get(key) for key in SHOP_KEYS}


def clean_settings(values: dict) -> dict:
    """Check the settings form's values (raises ValidationError naming each bad field)."""
    errors: dict = {}
    clean = {
        "shop_name": _take(errors, "shop_name", v.text, values.get("shop_name"), max_len=120),
        "shop_name_en": _take(errors, "shop_name_en", v.text, values.get("shop_name_en"),
                              max_len=120, required=False) or "",
        "shop_phone": _take(errors, "shop_phone", v.text, values.get("shop_phone"),
                            max_len=40, required=False) or "",
        "shop_address": _take(errors, "shop_address", v.text, values.get("shop_address"),
                              max_len=300, required=False) or "",
        "receipt_terms": _take(errors, "receipt_terms", v.text, values.get("receipt_terms"),
                               max_len=2000, required=False) or "",
        "delivery_terms": _take(errors, "delivery_terms", v.text, values.get("delivery_terms"),
                                max_len=2000, required=False) or "",
    }
    money = values.get("money_display")
    if money not in shop_settings.MONEY_DISPLAYS:
        errors["money_display"] = _("Must be one of: %(options)s.",
                                    options=", ".join(shop_settings.MONEY_DISPLAYS))
    clean["money_display"] = money
    clean["auto_close_days"] = _take(errors, "auto_close_days", v.integer,
                                     values.get("auto_close_days"), minimum=1, maximum=365)
    for key in ("remind_estimate_days", "remind_pickup_days"):
        clean[key] = _take(errors, key, v.integer, values.get(key), minimum=0, maximum=365)
    clean["warranty_days"] = _take(errors, "warranty_days", v.integer,
                                   values.get("warranty_days"), minimum=0, maximum=3650)
    clean["loaner_overdue_days"] = _take(errors, "loaner_overdue_days", v.integer,
                                         values.get("loaner_overdue_days"), minimum=1,
                                         maximum=365)
    # (a form from before the setting, or a script's, leaves it as it is)
    check = values.get("handback_check") or shop_settings.get("handback_check")
    if check not in pickup.CHECKS:
        errors["handback_check"] = _("Must be one of: %(options)s.",
                                     options=", ".join(pickup.CHECKS))
    clean["handback_check"] = check
    signing = values.get("signature_required") or shop_settings.get("signature_required")
    if signing not in signatures.REQUIRED:
        errors["signature_required"] = _("Must be one of: %(options)s.",
                                         options=", ".join(signatures.REQUIRED))
    clean["signature_required"] = signing
    # as handback_check's (the config's may be the number 80: the environment's are JSON)
    paper = str(values.get("slip_paper") or shop_settings.get("slip_paper"))
    if paper not in slips.PAPER_CHOICES:
        errors["slip_paper"] = _("Must be one of: %(options)s.",
                                 options=", ".join(slips.PAPER_CHOICES))
    clean["slip_paper"] = paper
    limits = {}
    raw_limits = values.get("state_time_limits") or {}
    if not isinstance(raw_limits, dict):
        raw_limits = {}
    for state in shop_settings.TIMED_STATES:
        raw = raw_limits.get(state)
        if raw in (None, ""):
            continue  # no limit for this state
        hours = _take(errors, f"limit_{state}", v.integer, raw, minimum=1, maximum=24 * 365)
        if hours:
            limits[state] = hours
    clean["state_time_limits"] = limits
    _check(errors)
    return clean


def update_settings(by: User, values: dict) -> dict:
    """Store the shop settings that changed, one audit record per changed key."""
    clean = clean_settings(values)
    with committing():
        before = current_settings()
        for key in SHOP_KEYS:
            if before.get(key) != clean[key]:
                _set(key, clean[key])
                audit.log("setting.update", obj=("setting", key), before={key: before.get(key)},
                          after={key: clean[key]})
    return clean


# --- the role matrix -------------------------------------------------------------------------

def role_matrix() -> dict:
    """The role matrix as the admin page shows it: each permission with its roles and the
    routes it guards (pages and API, read from the app's URL map), and each ticket event with
    who fires it."""
    from ..auth import API_PERMISSIONS, PERMISSIONS
    from ..lifecycle import EVENTS
    routes: dict = {}
    for rule in current_app.url_map.iter_rules():
        view = current_app.view_functions.get(rule.endpoint)
        key = getattr(view, "permission", None) or API_PERMISSIONS.get(rule.endpoint)
        if key:
            methods = sorted(m for m in rule.methods if m not in ("HEAD", "OPTIONS"))
            routes.setdefault(key, []).append((" ".join(methods), rule.rule))
    perms = PERMISSIONS
    return {
        "roles": ROLES,
        "permissions": [{"key": key, "roles": perms[key], "routes": sorted(routes.get(key, []),
                                                                           key=lambda r: r[1])}
                        for key in sorted(perms)],
        "events": [{"name": rule.name, "label": rule.label, "roles": rule.roles,
                    "sources": rule.sources, "dest": rule.dest} for rule in EVENTS.values()],
        "event_actors": (*ROLES, "customer", "system"),
    }
