"""Servicedesk: a service-desk ticketing system for phone and electronics repair shops."""
import logging
import os
import secrets
from pathlib import Path

from flask import Flask, request, session
from flask_login import current_user

ROOT = Path(__file__).resolve().parent.parent

# The configuration names of DESIGN section 4, read from the environment as they are.
ENV_SETTINGS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SMS_BACKEND", "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID",
                "TWILIO_API_BASE_URL", "PUBLIC_BASE_URL", "SERVICEDESK_LOCALE",
                "SERVICEDESK_TIMEZONE")


def _database_url(url: str) -> str:
    # One driver for PostgreSQL everywhere: psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _secret_key(app: Flask) -> str:
    """SECRET_KEY from the environment, else one generated into the instance folder once."""
    path = Path(app.instance_path) / "secret_key"
    try:
        if path.exists():
            return path.read_text().strip()
    except OSError as exc:  # made by root, read by the service user: say so, no traceback
        from .checks import ConfigError, unreadable_secret_key
        raise ConfigError(unreadable_secret_key(path, exc)) from exc
    key = secrets.token_hex(32)
    try:
        # owner-only from its first byte (no moment when others could read it); O_EXCL: a
        # second process starting at the same time reads the one the first wrote
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key)
    return key


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True,
                static_folder=str(ROOT / "static"), template_folder=str(ROOT / "templates"))
    app.config.from_pyfile(str(ROOT / "config" / "default.py"))
    app.config.from_pyfile("config.py", silent=True)
    for name in ENV_SETTINGS:
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    app.config.from_prefixed_env("SERVICEDESK")
    if test_config:
        app.config.update(test_config)

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    url = app.config.get("DATABASE_URL") or f"sqlite:///{Path(app.instance_path) / 'servicedesk.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = _database_url(url)
    from .checks import ConfigError, database_url_problem
    problem = database_url_problem(app.config["SQLALCHEMY_DATABASE_URI"], url)
    if problem:  # a FAIL line naming DATABASE_URL, not a traceback from the engine
        raise ConfigError(problem)
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    # Whatever options the environment gives: a database error's message (logged, or a
    # traceback on the console) names the statement but never its values (a customer's phone
    # or name, a password hash, a token).
    options["hide_parameters"] = True
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # The embedded database's connections queue their writers (servicedesk/embedded.py).
        from .embedded import Connection
        options["connect_args"] = {**options.get("connect_args", {}), "factory": Connection}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app)
    if str(app.config.get("PUBLIC_BASE_URL") or "").startswith("https://"):
        # Served over TLS: cookies never travel in clear.
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["SERVICEDESK_LOCALE"]
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["SERVICEDESK_TIMEZONE"]

    _init_extensions(app)
    _register_blueprints(app)
    from . import cli
    cli.register(app)
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))
    from . import logscrub
    logscrub.install()  # no customer tokens, queries or addresses in the logs
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    return app


# Pages whose ?lang= is for that page only: a receipt printed in the customer's language does
# not switch the staff member's screens (the customer's own pages keep theirs apart too).
ONE_PAGE_LANGUAGE = frozenset({"reception.receipt", "reception.delivery_receipt"})


def select_locale() -> str:
    """The staff user's choice, else the language picked with the switcher, else the shop's."""
    from flask import current_app, g, has_request_context
    languages = current_app_languages()
    if not has_request_context():  # commands, jobs: the shop's language
        return current_app.config["SERVICEDESK_LOCALE"]
    chosen = request.args.get("lang")
    if chosen in languages:
        if request.blueprint != "public" and request.endpoint not in ONE_PAGE_LANGUAGE:
            session["lang"] = chosen  # the browser's language from now on
        return chosen
    if getattr(g, "page_language", None) in languages:
        return g.page_language
    user_lang = getattr(current_user, "language", None) if current_user else None
    if getattr(current_user, "role", None) == "kiosk":
        user_lang = None  # one account on every screen: a customer's choice stays on theirs
    if user_lang in languages:
        return user_lang
    if session.get("lang") in languages:
        return session["lang"]
    return current_app.config["SERVICEDESK_LOCALE"]


def current_app_languages() -> tuple:
    from flask import current_app
    return tuple(current_app.config["LANGUAGES"])


def _init_extensions(app: Flask) -> None:
    from . import embedded, i18n, persist
    from .extensions import babel, csrf, db, limiter, login_manager, migrate
    from .notifications.inprocess import InProcessSender
    from .notifications.outbox import register_session_hooks

    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from sqlalchemy import event as sa_event
        with app.app_context():
            sa_event.listen(db.engine, "connect", embedded.pragmas)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True,
                     compare_type=True)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(Path(__file__).parent / "translations"))
    i18n.init_app(app)
    from .devices import accessories_label, kind_label
    from .i18n import per_render
    app.add_template_filter(per_render(kind_label), "device_kind")  # in the page's language
    app.add_template_filter(per_render(accessories_label), "accessories")
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = app.config.get("SESSION_PROTECTION", "strong")
    from flask_babel import lazy_gettext as _l
    login_manager.login_message = _l("Please log in to open this page.")
    login_manager.login_message_category = "warning"
    from . import auth  # registers the user loaders
    app.session_interface = auth.SessionInterface()

    @app.context_processor
    def labels():
        from . import lifecycle, settings, signatures
        from .auth import ROLE_LABELS, can
        return {"can": lambda action: can(current_user, action),
                "signature_required_with": signatures.required_with,
                # (lowest, highest) an estimate asks: a range while its alternatives are open
                "estimate_range": lifecycle.estimate_range,
                "role_label": lambda r: ROLE_LABELS.get(r, r),
                "service_type_label": settings.service_type_label,
                # the admin's shop settings, read only when a page prints them
                "shop_name": ShopSetting("shop_name"),
                "shop_setting": settings.get}

    register_session_hooks()
    persist.register_session_hooks()
    from .notifications import webhooks
    webhooks.register_session_hooks()
    from .links import note_base_url
    app.before_request(note_base_url)  # the address SMS written outside a request link to
    sender = app.extensions["servicedesk_sender"] = InProcessSender(app)
    if (not app.config.get("REDIS_URL") and app.config.get("NOTIFY_INPROCESS") == "thread"
            and app.config.get("INPROCESS_CLOCK", True)):
        # No worker: the web process keeps the shop's clock (the sweep, reminders, auto-close),
        # from its first request on; commands (flask init-db, ...) never start it.
        started = []

        @app.before_request
        def _start_the_clock():
            if not started:
                started.append(True)
                sender.start()


class ShopSetting:
    """A shop setting for templates, looked up when printed (settings.get, cached per request),
    so a page that does not show it costs no query."""

    def __init__(self, key: str):
        self.key = key

    def value(self):
        from . import settings
        if self.key == "shop_name":  # in the page's language
            return settings.shop_name()
        return settings.get(self.key)

    def __str__(self) -> str:
        return str(self.value() or "")

    def __html__(self) -> str:
        from markupsafe import escape
        return str(escape(str(self)))

    def __bool__(self) -> bool:
        return bool(self.value())

    def __eq__(self, other) -> bool:
        return self.value() == other

    __hash__ = None


def _register_blueprints(app: Flask) -> None:
    from .web import (admin, api, api_reports, auth, errors, health, main, public, reception,
                      reports, sms, tickets, workbench)
    for module in (reception, workbench, reports, api_reports, admin, health):
        app.register_blueprint(module.bp)
    app.register_blueprint(sms.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(main.bp)
    app.register_blueprint(tickets.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp)
    errors.register(app)
