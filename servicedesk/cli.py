"""Flask commands (DESIGN section 5): init-db, create-user, api-token, seed-demo, import-history,
sweep-outbox, close-unanswered, remind-customers, worker, verify-audit, backup, copy-db, and the
i18n group.

What a command says is in the shop's language (SERVICEDESK_LOCALE, through Flask-Babel as the
web's pages, shop_language): its own words, the domain's errors with "Error:" before them
(ShopError), `check`'s findings, verify-audit's account of what a ticket's records disagree on,
--help (ShopCommand, ShopOption: lazy texts worked out when shown) and the usage errors of a
mistyped command (ShopUsageError): one language per output. Names a script types (commands,
options, environment variables, user names, event names) stay as typed, in Latin letters, with
no bidi marks around them: a terminal shows them as they are, and they copy as typed. Still in
English: Click's reason why a file or path cannot be used (the system's words), Click's help
for a group's own options (`flask --help`, Flask's), and a setting so wrong that the app cannot
be built (checks.ConfigError: no app, no Babel)."""
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import pgettext
from sqlalchemy import select

from .extensions import db
from .models import ROLES, Branch, Ticket, User

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


class ShopError(click.ClickException):
    """A command's error said in the shop's language, Click's "Error:" prefix with it: the
    words are worked out when it is raised, in the command's app context (Click shows it
    after that context has gone). Click's own usage errors (an unknown option, a missing
    argument, a value not among the choices) and ``--help`` stay in Click's English."""

    def __init__(self, message: str):
        super().__init__(message)
        self.said = _("Error: %(message)s", message=message)

    def show(self, file=None) -> None:
        click.echo(self.said, file=file, err=file is None)


@contextmanager
def shop_language() -> Iterator[None]:
    """What is said inside is in the shop's language (SERVICEDESK_LOCALE), whatever request or
    user is about: a command's output, the shop's first branch's name. A value the app does
    not speak (a typo `flask check` is about to name) is English, not a traceback."""
    from flask_babel import force_locale
    locale = current_app.config.get("SERVICEDESK_LOCALE") or "fa"
    languages = current_app.config.get("LANGUAGES") or ("fa", "en")
    with force_locale(locale if locale in languages else "en"):
        yield


def _in_app(ctx: click.Context) -> None:
    """The app's context for what a command says before its callback runs (--help, a usage
    error): `flask` pushes it (FlaskGroup.get_command), the app's test runner does not."""
    from flask import has_app_context
    from flask.cli import ScriptInfo
    if not has_app_context():
        ctx.with_resource(ctx.ensure_object(ScriptInfo).load_app().app_context())


def _usage_message(exc: click.UsageError) -> str:
    """Click's usage error in the shop's words: a missing argument or option, an option not
    known, a value not allowed (the choices, the range); anything else in Click's own."""
    from .i18n import format_number
    ctx, param = exc.ctx, getattr(exc, "param", None)
    between = pgettext("between names", ", ")
    name = param.get_error_hint(ctx) if param is not None and ctx is not None else None
    if isinstance(exc, click.MissingParameter) and name:
        said = (_("Missing argument %(name)s.", name=name)
                if isinstance(param, click.Argument)
                else _("Missing option %(name)s.", name=name))
        if isinstance(param.type, click.Choice):
            said += " " + _("Choose from: %(choices)s.",
                            choices=between.join(map(str, param.type.choices)))
        return said
    if isinstance(exc, click.NoSuchOption):
        said = _("No such option: %(name)s", name=exc.option_name)
        if exc.possibilities:
            said += " " + _("(Did you mean %(names)s?)",
                            names=between.join(sorted(exc.possibilities)))
        return said
    if isinstance(exc, click.BadOptionUsage) and ctx is not None:
        known = next((p for p in ctx.command.params if exc.option_name in p.opts), None)
        if isinstance(known, click.Option) and not known.is_flag:  # else: a flag given a value
            return _("Option %(name)s needs a value.", name=repr(exc.option_name))
    if isinstance(exc, click.BadParameter) and name:
        kind, typed = param.type, repr(getattr(exc, "typed", ""))
        if isinstance(kind, click.Choice) and hasattr(exc, "typed"):
            reason = _("%(value)s is not one of %(choices)s", value=typed,
                       choices=between.join(map(str, kind.choices)))
        elif isinstance(kind, click.IntRange) and kind.max is None and hasattr(exc, "typed"):
            reason = _("%(value)s is not a whole number of %(least)s or more", value=typed,
                       least=format_number(kind.min))
        elif isinstance(kind, click.IntRange) and hasattr(exc, "typed"):
            reason = _("%(value)s is not a whole number from %(least)s to %(most)s",
                       value=typed, least=format_number(kind.min),
                       most=format_number(kind.max))
        else:  # a file that cannot be opened, and the like: the system's words
            reason = exc.message
        return _("Invalid value for %(name)s: %(reason)s", name=name, reason=reason)
    return exc.format_message()


class ShopUsageError(click.UsageError):
    """A mistyped command (an argument missing, an option not known, a value not allowed)
    said in the shop's language, laid out as Click lays it out: the usage line, where to find
    help, the error. Worked out when raised, while the app's context (and its Babel) is there:
    Click shows it after that context has gone. The exit status stays Click's (2)."""

    def __init__(self, exc: click.UsageError):
        super().__init__(_usage_message(exc), exc.ctx)
        self.said = _("Error: %(message)s", message=self.message)
        self.usage = self.hint = None
        if exc.ctx is not None:
            self.usage = exc.ctx.get_usage()
            self.hint = _("Try '%(command)s --help' for help.", command=exc.ctx.command_path)

    def show(self, file=None) -> None:
        if self.usage:
            click.echo(f"{self.usage}\n{self.hint}\n", file=file, err=file is None)
        click.echo(self.said, file=file, err=file is None)


class ShopOption(click.Option):
    """An option whose ``help`` stays lazy: Click's Option cleans its help when it is made,
    which would work a lazy text out at import, in no language; kept as given, Click works it
    out when --help is shown (ShopCommand: in the shop's language). One line each, so nothing
    is lost without the cleaning."""

    def __init__(self, *args, help=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = help

    def process_value(self, ctx: click.Context, value):
        try:
            return super().process_value(ctx, value)
        except click.BadParameter as exc:  # the value typed, for _usage_message to name
            exc.typed = value
            raise

    def get_help_extra(self, ctx: click.Context):
        extra = super().get_help_extra(ctx)
        if "required" in extra:  # Click passes it through its own gettext: ours is kept
            extra["required"] = _("required")
        return extra


class ShopCommand(click.Command):
    """A command whose --help and usage errors are in the shop's language: the texts given
    lazily (help=_l(...), ShopOption), Click's headings and its help option in our words, a
    usage error raised again as ShopUsageError."""

    def get_help(self, ctx: click.Context) -> str:
        _in_app(ctx)
        with shop_language():
            return super().get_help(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        return str(self.short_help or "") or super().get_short_help_str(limit)

    def get_usage(self, ctx: click.Context) -> str:
        _in_app(ctx)
        with shop_language():
            return super().get_usage(ctx)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)),
                              prefix=_("Usage: "))

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [param.get_help_record(ctx) for param in self.get_params(ctx)
                if not isinstance(param, click.Argument)]
        rows = [row for row in rows if row is not None]
        if rows:
            with formatter.section(_("Options")):
                formatter.write_dl([(str(term), str(text)) for term, text in rows])

    def get_help_option(self, ctx: click.Context):
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = _l("Show this message and exit.")
        return option

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            _in_app(ctx)
            with shop_language():
                raise ShopUsageError(exc) from None


def command(name: str, help, **kwargs):
    """``click.command`` for our commands: a ShopCommand with its --help text given lazily
    (the docstring stays for the code's readers)."""
    return click.command(name, cls=ShopCommand, help=help, **kwargs)


def option(*decls, **kwargs):
    """``click.option`` whose ``help`` stays lazy (ShopOption)."""
    return click.option(*decls, cls=ShopOption, **kwargs)


def require_schema() -> None:
    """A plain error naming init-db when the database has no tables yet (a new database, or
    DATABASE_URL pointing elsewhere than meant), instead of a traceback from the first query."""
    from sqlalchemy import inspect
    if not inspect(db.engine).has_table(Branch.__tablename__):
        raise ShopError(_("The database has no tables yet: run "
                          "`flask --app wsgi init-db` first."))


def ensure_default_branch() -> Branch:
    """The first branch, created if there is none: named DEFAULT_BRANCH_NAME, or, when that is
    not set, "Main branch" in the shop's language (an admin can rename it)."""
    require_schema()
    branch = db.session.scalar(select(Branch).order_by(Branch.id))
    if branch is None:
        name = current_app.config.get("DEFAULT_BRANCH_NAME")
        if not name:
            with shop_language():
                name = _("Main branch")
        branch = Branch(name=name, code=current_app.config["DEFAULT_BRANCH_CODE"])
        db.session.add(branch)
        db.session.commit()
    return branch


@command("init-db", help=_l("Create or upgrade the schema (migrations) and the default "
                            "branch."))
def init_db():
    """Create or upgrade the schema (migrations) and the default branch."""
    from flask_migrate import upgrade
    upgrade(directory=str(ROOT / "migrations"))
    branch = ensure_default_branch()
    click.echo(_("Database ready; default branch: %(name)s (%(code)s).", name=branch.name,
                 code=branch.code))


@command("create-user", help=_l("Create a staff account."))
@click.argument("name")
@option("--role", type=click.Choice(ROLES), required=True,
        help=_l("what the account may do: reception, technician, manager, admin or kiosk"))
@option("--password", help=_l("at least 8 characters; omitted: a random one is printed"))
@option("--full-name", default="", help=_l("the name shown on screens and slips"))
@option("--language", type=click.Choice(("fa", "en")), default=None,
        help=_l("the account's language, fa or en; default: the shop's"))
@option("--branch", "branch_code", default=None, metavar="CODE",
        help=_l("the branch's code (%(codes)s...), or 'none' for staff of every branch (a "
                "workshop's technician); default: the first branch", codes="A, T1"))
def create_user(name, role, password, full_name, language, branch_code):
    """Create a staff account."""
    from .errors import DomainError
    from .services.people import create_user as create
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    branch = ensure_default_branch()
    if branch_code is not None and branch_code.strip().lower() == "none":
        branch = None
    elif branch_code is not None:
        branch = db.session.scalar(select(Branch).where(
            Branch.code == branch_code.strip().upper()))
        if branch is None:
            codes = ", ".join(db.session.scalars(select(Branch.code).order_by(Branch.id)))
            raise ShopError(_(
                "No branch has the code %(code)s (the codes: %(codes)s; or none).",
                code=branch_code, codes=codes))
    try:
        create(name, role, password, full_name=full_name, branch=branch,
               language=language)
    except DomainError as exc:
        fields = exc.extra.get("fields") or {}
        raise ShopError(" ".join([exc.message, *[f"{k}: {v}" for k, v in fields.items()]]))
    from .auth import ROLE_LABELS
    click.echo(_("Created %(name)s (%(role)s).", name=name,
                 role=ROLE_LABELS.get(role, role)))
    if generated:
        click.echo(_("Password: %(password)s", password=password))


@command("api-token", help=_l("Print a new API token for user NAME (on its own last line)."))
@click.argument("name")
@option("--label", default="cli", help=_l("a name for the token, to tell it apart later"))
@option("--days", type=click.IntRange(1, 3650), default=None,
        help=_l("Days until the token expires (default: API_TOKEN_DAYS, 365)."))
def api_token(name, label, days):
    """Print a new API token for user NAME (on its own last line)."""
    require_schema()
    from datetime import timedelta

    from .auth import KIOSK
    from .models import ApiToken, utcnow
    from .services.people import issue_token, token_digest
    user = db.session.scalar(select(User).where(User.username == name))
    if user is None or not user.active:
        raise ShopError(_("No active user is named %(name)s.", name=name))
    if user.role == KIOSK:  # the API refuses a kiosk everything (auth.PERMISSIONS)
        raise ShopError(_("%(name)s is a kiosk account: it has no use for an API "
                          "token.", name=name))
    raw = issue_token(user, label)
    days = days or current_app.config.get("API_TOKEN_DAYS", 365)
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(raw)))
    token.expires_at = utcnow() + timedelta(days=days)
    db.session.commit()
    from .i18n import format_datetime
    click.echo(_("Expires: %(when)s.", when=format_datetime(token.expires_at)))
    click.echo(raw)


@command("import-history", help=_l("Import past tickets from JSON Lines; idempotent by "
                                   "external_id."))
@click.argument("file", type=click.File("r", encoding="utf-8"))
def import_history(file):
    """Import past tickets from JSON Lines; idempotent by external_id."""
    from .i18n import use_rials_in_messages
    from .services.importer import import_lines
    ensure_default_branch()
    use_rials_in_messages()  # the file's money is in rials: so are the amounts its errors name
    report = import_lines(file)
    from .i18n import format_number
    for number, message in report.errors:
        click.echo(pgettext("a line of a file", "Line %(n)s: %(problem)s",
                            n=format_number(number), problem=message), err=True)
    for number, message in report.warnings:
        click.echo(pgettext("a line of a file", "Line %(n)s: imported, but %(problem)s",
                            n=format_number(number), problem=message), err=True)
    click.echo(_("Imported %(imported)s, already present %(skipped)s, failed %(failed)s.",
                 imported=format_number(report.imported),
                 skipped=format_number(report.skipped),
                 failed=format_number(len(report.errors))))
    if report.errors:
        sys.exit(1)


@command("seed-demo", help=_l("Fill a demo shop: users, customers and tickets in every "
                              "state."))
def seed_demo():
    """Fill a demo shop: users, customers and tickets in every state."""
    from .services.demo import seed
    ensure_default_branch()
    for line in seed():
        click.echo(line)


@command("sweep-outbox", help=_l("Hand notifications stuck unsent back to the sender."))
def sweep_outbox():
    """Hand notifications stuck unsent back to the sender."""
    require_schema()
    from .notifications.sweep import sweep
    if current_app.config.get("REDIS_URL"):
        count = sweep()
    else:  # no worker to hand them to: send them from this process, now
        count = sweep(send=current_app.extensions["servicedesk_sender"].send_now)
    from .i18n import format_number
    click.echo(_("Handed back to the sender: %(count)s notification(s).",
                 count=format_number(count)))


@command("close-unanswered", help=_l("Close delivered tickets whose survey nobody answered "
                                     "within the set number of days."))
@option("--days", type=click.IntRange(min=1), default=None,
        help=_l("days after delivery (default: the shop's auto-close setting)"))
def close_unanswered(days):
    """Close delivered tickets whose survey nobody answered within the set number of days."""
    require_schema()
    from .services.surveys import auto_close, auto_close_days
    days = auto_close_days() if days is None else days
    count = auto_close(days=days)
    from .i18n import format_number
    click.echo(_("Closed %(count)s ticket(s) delivered more than %(days)s day(s) ago with no "
                 "survey answer.", count=format_number(count), days=format_number(days)))


@command("remind-customers", help=_l(
    "Write the reminder SMS that are due: estimates nobody answered, devices nobody collected "
    "(the shop's settings say after how many days; one reminder each)."))
def remind_customers():
    """Write the reminder SMS that are due: estimates nobody answered, devices nobody collected
    (the shop's settings say after how many days; one reminder each)."""
    require_schema()
    from .services.reminders import remind
    if not current_app.config.get("REDIS_URL"):
        current_app.config["NOTIFY_INPROCESS"] = "sync"  # sent before the command exits
    written = remind()
    from .i18n import format_number
    click.echo(_("Reminders: %(estimates)s estimate(s) not answered, %(pickups)s device(s) not "
                 "collected.", estimates=format_number(written["remind_estimate"]),
                 pickups=format_number(written["remind_pickup"])))


@command("worker", help=_l(
    "Run the background worker: rq with its scheduler, the outbox sweep every minute, and "
    "every hour the customers' reminders and the auto-close of unanswered delivered tickets."))
@option("--burst", is_flag=True, help=_l("stop when the queue is empty"))
@option("--sweep-every", default=60, help=_l("seconds between sweeps (default: 60)"))
def worker(burst, sweep_every):
    """Run the background worker: rq with its scheduler, the outbox sweep every minute, and every
    hour the customers' reminders and the auto-close of unanswered delivered tickets."""
    from .notifications.worker import run_worker
    run_worker(current_app._get_current_object(), burst=burst, sweep_every=sweep_every)


@command("verify-audit", help=_l(
    "Check every ticket's audit chain and that its bill, estimate, payment, technician and "
    "actors agree with it; and that each customer's SMS switch agrees with the audit log."))
def verify_audit():
    """Check every ticket's audit chain (the first edited event of each broken one) and that
    its bill, estimate, payment, technician and actors agree with the chain; and that each
    customer's SMS switch agrees with its last record in the audit log."""
    require_schema()
    from .audit import verify_customers_sms
    from .i18n import format_number
    from .lifecycle import verify_chain, verify_records
    broken = 0
    for ticket in db.session.scalars(select(Ticket).order_by(Ticket.id)):
        seq = verify_chain(ticket)
        problems = ([_("chain broken at event %(seq)s", seq=format_number(seq))]
                    if seq is not None else []) + verify_records(ticket)
        if problems:
            broken += 1
        for problem in problems:
            click.echo(_("Ticket %(number)s: %(problem)s", number=ticket.number,
                         problem=problem))
    customers = verify_customers_sms()
    for ident, problem in customers:
        click.echo(_("Customer %(id)s: %(problem)s", id=format_number(ident), problem=problem))
    failures = ([_("%(count)s ticket(s) with a broken audit chain", count=format_number(broken))]
                if broken else []) + (
        [_("%(count)s customer(s) whose SMS switch differs from the audit log",
           count=format_number(len({i for i, _p in customers})))] if customers else [])
    if failures:
        raise ShopError(pgettext("between problems", "; ").join(failures))
    click.echo(_("Audit chain intact."))


@command("backup", help=_l(
    "Copy the embedded SQLite database to FILE, safely while the shop keeps working. On "
    "PostgreSQL use pg_dump (see deploy/README.md)."))
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def backup(file):
    """Copy the embedded SQLite database to FILE, safely while the shop keeps working.

    SQLite's online backup (a consistent copy, whatever is being written meanwhile; copying the
    .db file by hand can miss what is still in its -wal file). On PostgreSQL use pg_dump (see
    deploy/README.md)."""
    import sqlite3

    from .i18n import format_number
    engine = db.engine
    if engine.dialect.name != "sqlite":
        raise ShopError(_("The database is not SQLite: back it up with pg_dump "
                          "(deploy/README.md, section 4)."))
    target = Path(file)
    if target.exists():
        raise ShopError(_("%(file)s exists; give a new file name.", file=target))
    if not target.parent.is_dir():
        raise ShopError(_("The folder %(folder)s does not exist.", folder=target.parent))
    source = sqlite3.connect(engine.url.database)
    try:
        # the shop's customers, staff hashes and tokens: readable by its owner only, like the
        # secret key (created empty with that mode, so no moment readable by others)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            tickets = copy.execute("SELECT count(*) FROM tickets").fetchone()[0]
        finally:
            copy.close()
    except (sqlite3.Error, OSError) as exc:  # a full disk, a folder not writable: in words
        target.unlink(missing_ok=True)
        raise ShopError(_("Could not write %(file)s: %(reason)s", file=target,
                          reason=exc)) from None
    finally:
        source.close()
    click.echo(_("Backed up to %(file)s (%(count)s tickets).", file=target,
                 count=format_number(tickets)))


@command("copy-db", help=_l(
    "Copy every table of the Servicedesk database at SOURCE_URL (e.g. the embedded SQLite "
    "file, sqlite:////srv/servicedesk/instance/servicedesk.db) into DATABASE_URL, a new "
    "database made by init-db; all or nothing (deploy/README.md)."))
@click.argument("source_url")
def copy_db(source_url):
    """Copy every table of the Servicedesk database at SOURCE_URL (e.g. the embedded SQLite
    file, sqlite:////srv/servicedesk/instance/servicedesk.db) into DATABASE_URL, a new
    database made by init-db; ids kept, PostgreSQL's sequences moved past them, all or nothing
    (deploy/README.md: moving from the embedded database to PostgreSQL)."""
    from .copydb import Refusal, copy_database
    try:
        report = copy_database(source_url, echo=click.echo)
    except Refusal as exc:
        raise ShopError(str(exc)) from None
    # counts in ASCII digits, as the table lines above print them (aligned in columns)
    if report.sequences:
        click.echo(_("Copied %(rows)s rows in %(tables)s tables; %(sequences)s id sequence(s) "
                     "moved past the copied ids. Next: flask --app wsgi check and flask --app "
                     "wsgi verify-audit", rows=report.rows, tables=len(report.tables),
                     sequences=report.sequences))
    else:
        click.echo(_("Copied %(rows)s rows in %(tables)s tables. Next: flask --app wsgi check "
                     "and flask --app wsgi verify-audit", rows=report.rows,
                     tables=len(report.tables)))


i18n = AppGroup("i18n", help=_l("Translation catalogues (pybabel)."))


def _pybabel(*args):
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True,
                   cwd=ROOT)


@i18n.command("extract", cls=ShopCommand,
              help=_l("Extract messages and update every catalogue."))
def i18n_extract():
    """Extract messages and update every catalogue."""
    _pybabel("extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext",
             "--no-location", "--sort-output", "-o", "messages.pot", ".")
    _pybabel("update", "-i", "messages.pot", "-d", str(PACKAGE / "translations"),
             "--no-fuzzy-matching", "--ignore-obsolete")


@i18n.command("compile", cls=ShopCommand,
              help=_l("Compile the catalogues (.po -> .mo); done by the run and test scripts."))
def i18n_compile():
    """Compile the catalogues (.po -> .mo); done by the run and test scripts."""
    compile_catalogues()


def compile_catalogues() -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    for po in (PACKAGE / "translations").glob("*/LC_MESSAGES/*.po"):
        with po.open("rb") as f:
            catalog = read_po(f)
        with po.with_suffix(".mo").open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)


def register(app) -> None:
    for command in (init_db, create_user, api_token, import_history, seed_demo, sweep_outbox,
                    close_unanswered, remind_customers, worker, verify_audit, backup, copy_db,
                    i18n):
        app.cli.add_command(command)
    from .checks import check
    app.cli.add_command(check)
