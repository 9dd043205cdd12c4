"""Staff accounts and API tokens."""
import hashlib
import logging
import re
import secrets
from datetime import timedelta
from typing import Iterable, Optional, Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload
from zxcvbn import zxcvbn

from .. import validation as v
from ..errors import Conflict, ValidationError
from ..extensions import db
from ..models import ROLES, ApiToken, Branch, User, utcnow

log = logging.getLogger(__name__)

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# How far back the wrong tries of a name no account answers to are counted (below).
UNKNOWN_NAME_MEMORY = timedelta(days=1)


def _hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (64 MiB, t=3, p=4, above OWASP's minimum); tests
    may set ARGON2_PARAMS to a cheaper argon2id so a suite of hundreds of logins stays fast."""
    app = current_app._get_current_object()
    hasher = app.extensions.get("servicedesk_hasher")
    if hasher is None:
        hasher = PasswordHasher(**(app.config.get("ARGON2_PARAMS") or {}))
        app.extensions["servicedesk_hasher"] = hasher
        # Verified when the user does not exist, so the time taken does not tell whether a
        # user name exists.
        app.extensions["servicedesk_dummy_hash"] = hasher.hash("not-a-real-password")
    return hasher


# The passwords of 8 characters or more that lead the leaked-password lists (and so are tried
# first against any login), compared after folding case and the Persian keyboard (below).
COMMON_PASSWORDS = frozenset("""
12345678 123456789 1234567890 0123456789 87654321 987654321 9876543210 11111111 00000000
22222222 55555555 66666666 77777777 88888888 99999999 12341234 11223344 12121212 12344321
123123123 123321123 147258369 741852963 159753159 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx
1qazxsw2 q1w2e3r4 q1w2e3r4t5 qwertyui qwertyuiop qwerty12 qwerty123 qwerty1234 qwer1234
1234qwer asdfghjk asdfghjkl asdf1234 zxcvbnm1 zxcvbnm123 zaq12wsx 123qweasd qazwsxedc
1qaz2wsx3edc password password1 password12 password123 passw0rd p@ssw0rd p@ssword pa$$word
password! iloveyou iloveyou1 abcd1234 abc12345 abc123456 1234abcd aa123456 a1234567 a12345678
admin123 admin1234 administrator welcome1 welcome123 sunshine princess football baseball
superman starwars trustno1 letmein1 computer internet whatever 1234567a 12345678a 123456789a
changeme servicedesk iran1234 tehran123
""".split())
# The Persian keyboard's keys as the Latin ones at the same place: "ضصثقفغعه" is "qwertyui"
# typed with the Persian layout on.
PERSIAN_KEYS = str.maketrans("ضصثقفغعهخحجچشسیبلاتنمکگظطزرذدپو" "يك" "۰۱۲۳۴۵۶۷۸۹" "٠١٢٣٤٥٦٧٨٩",
                             "qwertyuiop[]asdfghjkl;'zxcvbnm," "dl" "0123456789" "0123456789")


def _folded(password: str) -> str:
    return password.strip().lower().translate(PERSIAN_KEYS)


def common_password(password: str) -> bool:
    folded = _folded(password)
    return folded in COMMON_PASSWORDS or len(set(folded)) == 1


# zxcvbn's score (0 to 4) a password must reach: 2 is "somewhat guessable", about 10^6 to 10^8
# guesses, beyond what an online attack gets through the login's lockout; 0 and 1 are the
# dictionary words, names, dates, keyboard walks and repeats with a digit or two that the
# leaked lists are made of ("Samsung123", "tehran123", "13701370", "asdfgh12").
MIN_STRENGTH = 2
_PASSWORD_SCORED = 100
# zxcvbn knows the years 1900 to 2050 as such; Iranians' birth years (and this year) are Jalali
JALALI_YEARS = [str(year) for year in range(1300, 1421)]  # zxcvbn's time grows with the length; a longer one is scored by its start


def too_easy(password: str, related: Iterable[str] = ()) -> bool:
    """Whether zxcvbn guesses the password (as typed, and as the Latin keys it was typed on
    with the Persian layout) in few tries; ``related`` are words a guesser would try first
    for this account (its user name and full name; the shop's name and the Jalali years are
    added)."""
    words = [w for w in (*related, current_app.config.get("SHOP_NAME"),
                         current_app.config.get("SHOP_NAME_EN"), "servicedesk")
             if isinstance(w, str) and w.strip()]
    words += [w2 for w in words for w2 in w.split() if len(w2) > 2] + JALALI_YEARS
    return min(zxcvbn(candidate[:_PASSWORD_SCORED], user_inputs=words)["score"]
               for candidate in {password, _folded(password)}) < MIN_STRENGTH


def check_password_rules(password: str, related: Iterable[str] = ()) -> None:
    """At least 8 characters, not one of the most common, and not guessed in few tries
    (``too_easy``: ``related`` as there)."""
    if not isinstance(password, str) or len(password) < 8:
        raise ValidationError(_("The password must have at least 8 characters."),
                              fields={"password": _("At least 8 characters.")})
    if common_password(password):
        raise ValidationError(_("This password is one of the most common ones, which anyone "
                                "trying to log in tries first; choose another."),
                              fields={"password": _("One of the most common passwords: choose "
                                                       "another.")})
    if too_easy(password, related):
        raise ValidationError(
            _("This password is too easy to guess: a word, a name, a date or keys side by side "
              "with a few digits are tried first. Choose a longer one, such as three or four "
              "words that do not belong together."),
            fields={"password": _("Too easy to guess: make it longer, such as three or four "
                                  "words that do not belong together.")})


# A user name: what is typed at the login and sent as an API's "technician"; the same rule for
# the admin's users page and the create-user command.
USERNAME_RE = re.compile(r"^[\w.@+-]{2,64}$")


def create_user(username: str, role: str, password: str, full_name: str = "",
                branch: Optional[Branch] = None, language: Optional[str] = None) -> User:
    errors = {}
    try:
        username = v.text(username, max_len=64)
    except ValueError as exc:
        errors["username"] = str(exc)
    else:
        if not USERNAME_RE.match(username):
            errors["username"] = _("Letters, digits and . _ @ + - only (2 to 64 characters).")
    if role not in ROLES:
        errors["role"] = _("Must be one of: %(options)s.", options=", ".join(ROLES))
    if errors:
        raise ValidationError(_("Some fields are not valid."), fields=errors)
    check_password_rules(password, (username, full_name))
    # "Sara" beside "sara" would be two accounts staff mix up (as on the admin page)
    if db.session.scalar(select(User.id).where(
            func.lower(User.username) == func.lower(username))):
        raise Conflict(_("A user with this name already exists."))
    user = User(username=username, role=role, full_name=full_name or "",
                password_hash=_hasher().hash(password), branch=branch, language=language,
                session_token=secrets.token_hex(32))
    db.session.add(user)
    db.session.commit()
    return user


def account_named(username: str) -> Optional[User]:
    return db.session.scalar(select(User).where(User.username == username))


def authenticate(username: str, password: str,
                 trusted_devices: Sequence[int] = ()) -> tuple[Optional[User], Optional[str]]:
    """(user, None) on success, else (None, reason) with reason "invalid" or "locked".

    Repeated failures lock the account for a while (counted per account, so a slow attack from
    many addresses is stopped too); the lock lifts by itself. The lock does not hold the
    account's own browsers back: ``trusted_devices`` are the user ids of the device cookie the
    browser holds from earlier logins there (OWASP's "device cookies"), so a stranger typing
    wrong passwords at the login page cannot keep reception out of its own desk all day.
    """
    user = db.session.scalar(select(User).where(User.username == username))
    now = utcnow()
    hasher = _hasher()
    if user is None or not user.active:
        try:
            hasher.verify(current_app.extensions["servicedesk_dummy_hash"], password or "")
        except VerificationError:
            pass
        locked = _locked_like_an_account(user.username if user else name_in_log(username), now)
        return None, "locked" if locked else "invalid"
    if user.device_failed_logins and not (user.locked_until and user.locked_until > now) \
            and user.device_failed_logins >= MAX_FAILED_LOGINS:
        user.device_failed_logins = 0  # the lock its own browsers' tries set has lifted
    own_browser = user.id in trusted_devices
    # its own browsers are trusted until they too have typed the password wrong too often
    trusted = own_browser and user.device_failed_logins < MAX_FAILED_LOGINS
    locked = user.locked_until is not None and user.locked_until > now
    if locked and not trusted:
        return None, "locked"
    try:
        hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        locks = False
        if own_browser:  # counted apart: a colleague at a shared desk guesses no more freely
            user.device_failed_logins += 1
            locks = user.device_failed_logins >= MAX_FAILED_LOGINS
        else:
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                locks, user.failed_logins = True, 0
        if locks:
            user.locked_until = now + LOCKOUT
        db.session.commit()
        # the try that locks it says so (not the next one, with the right password)
        return None, "locked" if locks else "invalid"
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.device_failed_logins = 0
    if not (trusted and locked):
        # a login from the account's own browser leaves a stranger's lock in place
        user.failed_logins = 0
        user.locked_until = None
    db.session.commit()
    return user, None


def name_in_log(username: str) -> str:
    """How the audit log names a failed login's user name no account has: a short digest keyed
    with the app's secret (what is typed into the name box may be a password typed in the
    wrong box), enough to see the same one tried again and again; the same name still reads
    the same, but whoever holds the log cannot find a password by trying a word list."""
    import hmac
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else bytes(key)  # config.py may give bytes
    return "?" + hmac.new(key, (username or "").encode(), hashlib.sha256).hexdigest()[:10]


def _locked_like_an_account(logged_as: str, now) -> bool:
    """Whether a name no active account has would be locked now, were it one: its wrong tries
    (the audit log's ``login.failed`` rows of the last day) replayed by the accounts' rule,
    this one included. The fifth wrong try in a row then says "locked", as for a real account,
    for ``LOCKOUT``: otherwise that answer told a stranger which names are staff's."""
    from ..models.admin import AuditLog
    rows = db.session.execute(
        select(AuditLog.at, AuditLog.value_to["reason"].as_string())
        .where(AuditLog.action == "login.failed", AuditLog.at >= now - UNKNOWN_NAME_MEMORY,
               AuditLog.value_to["username"].as_string() == logged_as)
        .order_by(AuditLog.id)).all()
    failed, until = 0, None
    for at, reason in rows:
        if until is not None and at < until:
            continue  # a try while it was locked: not counted
        if reason == "locked":  # the try that locked it
            failed, until = 0, at + LOCKOUT
        else:
            failed += 1
    if until is not None and now < until:
        return True
    return failed + 1 >= MAX_FAILED_LOGINS


def change_own_password(user: User, current: str, new: str) -> None:
    """A member of staff changes their own password (one typed in front of a customer, the one
    an administrator or manager gave them): the current one first, then the new one. Every
    other session of theirs ends (the caller logs this one in again); audited, never the
    password. A wrong current password is a ValidationError on ``current_password``."""
    try:
        _hasher().verify(user.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        raise ValidationError(_("Some fields are not valid."), fields={
            "current_password": _("This is not your current password.")}) from None
    try:
        check_password_rules(new, (user.username, user.full_name))
    except ValidationError as exc:
        raise ValidationError(exc.message, fields={"new_password": exc.fields["password"]}) \
            from None
    if new == current:
        raise ValidationError(_("Some fields are not valid."), fields={
            "new_password": _("Choose a password other than your current one.")})
    from .. import audit
    user.password_hash = _hasher().hash(new)
    user.password_change_due = False
    user.end_sessions()
    user.failed_logins = user.device_failed_logins = 0
    user.locked_until = None
    audit.log("user.password_change", obj=user, actor=user, after={"by": "self"})
    db.session.commit()


def token_digest(raw: str) -> str:
    # Tokens are 256 random bits: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token(user: User, name: str = "", days: Optional[int] = None) -> tuple[ApiToken, str]:
    """A new API token for ``user`` added to the session (the caller commits), valid ``days``
    (default: config API_TOKEN_DAYS): the row, which keeps only its hash, and the token."""
    raw = "sd_" + secrets.token_urlsafe(32)
    days = days or current_app.config.get("API_TOKEN_DAYS", 365)
    token = ApiToken(user_id=user.id, token_hash=token_digest(raw), name=name,
                     expires_at=utcnow() + timedelta(days=days))
    db.session.add(token)
    return token, raw


def issue_token(user: User, name: str = "", days: Optional[int] = None) -> str:
    """A new API token for ``user``, committed; the token is returned once."""
    _token, raw = new_token(user, name, days)
    db.session.commit()
    return raw


# One round trip: the token, its user and the user's branch (the API reads both). Built once:
# every API request runs it, and building the statement costs a quarter of running it.
_TOKEN_WITH_USER = (select(ApiToken).where(ApiToken.token_hash == bindparam("digest"))
                    .options(joinedload(ApiToken.user).joinedload(User.branch)))


def user_for_token(raw: str) -> Optional[User]:
    if not raw:
        return None
    token = db.session.scalar(_TOKEN_WITH_USER, {"digest": token_digest(raw)})
    now = utcnow()
    if token is None or not token.usable(now):  # revoked, expired, user deactivated
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        _note_use(token.id, now)
    return token.user


# An admin tells a live integration from an abandoned one by its token's last use: noted at
# most this often, so a busy client costs one write an hour, not one a request.
LAST_USED_EVERY = timedelta(hours=1)


def _note_use(token_id: int, now) -> None:
    """In a transaction of its own: a GET (whose session never commits) counts as a use. Best
    effort: a database busy with another writer must not fail the request it serves (the use
    is noted on a later one)."""
    try:
        with db.engine.begin() as connection:
            connection.execute(update(ApiToken).where(ApiToken.id == token_id)
                               .values(last_used_at=now))
    except SQLAlchemyError as exc:
        log.warning("could not note the use of API token %s: %s", token_id, exc)


def revoke_token(token_id: int) -> None:
    token = db.session.get(ApiToken, token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
