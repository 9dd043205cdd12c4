"""Error pages and JSON errors, and the security headers every response carries."""
from flask import abort, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, SecurityError

from ..errors import HTTP_CODES, DomainError, ValidationError
from ..extensions import db


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json")


def refuse_nul_input() -> None:
    """No one types a NUL character, and PostgreSQL's text cannot hold one: a query string or a
    form carrying one (a name looked up before any check, the login's) is refused, naming the
    field, instead of failing in the database as a server error; an address with one is found
    nowhere. Before every page's view; the API's blueprints call it once the token (and the
    reports' permission) is checked, so a client without one is told that first. (The API's
    JSON is checked field by field, by the validators.)"""
    if "\x00" in request.path:  # no page's address holds one (a token, a number)
        abort(404)
    sources = (request.args, request.form) if request.method == "POST" else (request.args,)
    for source in sources:
        for name, values in source.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                raise ValidationError(_("Some fields are not valid."), fields={
                    name.replace("\x00", ""): _("Contains characters that are not allowed.")})


def register(app) -> None:
    @app.before_request
    def refuse_nul():
        if not request.path.startswith("/api/"):  # (the API: once the token is checked)
            refuse_nul_input()

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        if wants_json():
            return jsonify(exc.to_dict()), exc.status, exc.headers
        return render_template("errors/error.html", code=exc.status, message=exc.message,
                               fields=exc.extra.get("fields")), exc.status, exc.headers

    @app.errorhandler(SecurityError)
    def untrusted_host(exc: SecurityError):
        # A Host outside TRUSTED_HOSTS: no URL can be built for it, so no page with links;
        # a plain answer, in the shop's language.
        return (_("This address is not the shop's."), 400,
                {"Content-Type": "text/plain; charset=utf-8"})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            400: _("The request could not be understood."),
            401: _("Log in first."),
            403: _("You may not open this page."),
            404: _("Not found."),
            405: _("This method is not allowed here."),
            413: _("The request is too large."),
            429: _("Too many requests; wait a moment and try again."),
        }
        message = messages.get(exc.code, exc.description or exc.name)
        expired = exc.code == 400 and "CSRF" in str(exc.description)
        if expired:
            message = _("The form expired or was not sent from this site; reload the page and "
                        "try again.")
        if wants_json():
            resp = jsonify({"error": str(message),
                            "code": HTTP_CODES.get(exc.code, "bad_request")})
        else:
            resp = render_template("errors/error.html", code=exc.code, message=message,
                                   **(_expired_form() if expired else {}))
        # what the error's own headers tell a client: a 405's Allow (RFC 9110), a 429's
        # Retry-After, a 401's WWW-Authenticate
        kept = {name: value for name, value in exc.get_headers()
                if name in ("Allow", "Retry-After", "WWW-Authenticate")}
        return resp, exc.code, kept

    @app.errorhandler(500)
    def server_error(exc):
        # The request may have failed inside a transaction the database aborted; the error
        # page itself reads (the user's language, the menu), so it starts from a clean one.
        db.session.rollback()
        if wants_json():
            return jsonify({"error": _("Something went wrong on our side."),
                            "code": HTTP_CODES[500]}), 500
        return render_template("errors/error.html", code=500,
                               message=_("Something went wrong on our side.")), 500

    @app.after_request
    def security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
        if request.path.startswith(("/t/", "/s/")):
            # The link's token never leaves the site in a Referer; the page's own forms send
            # one (over HTTPS the CSRF check refuses a form without it: "no-referrer" left
            # customers unable to approve, decline, stop SMS or answer the survey).
            resp.headers["Referrer-Policy"] = "same-origin"
            resp.headers["Cache-Control"] = "no-store"
        else:
            resp.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if request.endpoint != "static" and _signed_in():
            # A staff page holds customers' names and numbers: kept in no cache, a shared
            # desk's browser shows none of them from its Back button after the logout.
            resp.headers.setdefault("Cache-Control", "no-store")
        if request.is_secure:
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return resp


def _signed_in() -> bool:
    """Whether the request is a signed-in member of staff's (a session or a bearer token)."""
    from flask_login import current_user
    try:
        return bool(getattr(current_user, "is_authenticated", False))
    except Exception:  # noqa: BLE001 - an answer to a failed request still gets its headers
        return False


def _expired_form() -> dict:
    """A form refused as expired (a session that ended, a page left open overnight): the way
    back to it, where the browser usually still holds what was typed, and to the login when
    the session is gone."""
    from urllib.parse import urlsplit
    from flask_login import current_user
    back = request.referrer or ""
    here = urlsplit(request.host_url)
    there = urlsplit(back)
    same_site = (there.scheme, there.netloc) == (here.scheme, here.netloc)
    path = there.path + (f"?{there.query}" if there.query else "")
    return {"back_url": path if same_site and path.startswith("/") else None,
            "log_in_again": not getattr(current_user, "is_authenticated", False)}
