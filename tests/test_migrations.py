"""The migrations build the schema the models describe, on SQLite and on PostgreSQL; init-db is
safe to run again."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from servicedesk import create_app
from servicedesk.extensions import db
from servicedesk.models import Branch

from .conftest import PG_ADMIN_URL, ROOT, create_pg_database, drop_pg_database, kept_logging


@pytest.fixture(autouse=True)
def _keep_logging():
    """alembic's env.py reconfigures logging: every test here puts it back after."""
    with kept_logging():
        yield


def bare_app(url, tmp_path, **overrides):
    """The app with the test settings on an empty database (no create_all, unlike make_app)."""
    config = {"DATABASE_URL": url}
    testing = {}
    exec((ROOT / "config" / "testing.py").read_text(), testing)
    config.update({k: v for k, v in testing.items() if k.isupper()})
    config.update(overrides)
    app = create_app(config)
    app.instance_path = str(tmp_path)
    return app


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = create_pg_database()
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    drop_pg_database(name)


def _compare_opts(app) -> dict:
    args = dict(app.extensions["migrate"].configure_args)
    args.pop("process_revision_directives", None)
    return args


def test_upgrade_builds_exactly_the_models(empty_url, tmp_path):
    app = bare_app(empty_url, tmp_path)
    with app.app_context():
        try:
            assert sa.inspect(db.engine).get_table_names() == []
            upgrade()
            tables = set(sa.inspect(db.engine).get_table_names())
            assert set(db.metadata.tables) <= tables
            assert tables - set(db.metadata.tables) == {"alembic_version"}
            with db.engine.connect() as conn:
                context = MigrationContext.configure(conn, opts=_compare_opts(app))
                diff = compare_metadata(context, db.metadata)
            assert diff == [], "\n".join(map(str, diff))
            # the head is recorded: a second upgrade is a no-op
            upgrade()
            with db.engine.connect() as conn:
                heads = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            assert len(heads) == 1
        finally:
            db.session.remove()
            db.engine.dispose()


def test_init_db_twice_is_harmless(empty_url, tmp_path):
    app = bare_app(empty_url, tmp_path)
    runner = app.test_cli_runner()

    def init_db():
        # `flask --app wsgi init-db` runs in an app context of its own (FlaskGroup pushes it)
        with app.app_context():
            result = runner.invoke(args=["init-db"])
            db.session.remove()
        assert result.exit_code == 0, result.output
        assert "پایگاه داده آماده است" in result.output  # in the shop's language
        return result

    try:
        init_db()
        init_db()
        with app.app_context():
            branches = db.session.scalars(sa.select(Branch)).all()
            # a Persian shop's first branch has a Persian name
            assert [(b.name, b.code) for b in branches] == [("شعبهٔ مرکزی", "A")]
            assert set(db.metadata.tables) <= set(sa.inspect(db.engine).get_table_names())
            db.session.remove()
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("overrides, name", [
    ({"SERVICEDESK_LOCALE": "en"}, "Main branch"),
    ({"DEFAULT_BRANCH_NAME": "Tajrish"}, "Tajrish"),
])
def test_the_first_branch_is_named_in_the_shops_language_unless_configured(tmp_path, overrides,
                                                                             name):
    app = bare_app(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path, **overrides)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert f": {name} (A)." in result.output
        assert db.session.scalars(sa.select(Branch.name)).all() == [name]
        db.session.remove()
        db.engine.dispose()


def test_migrations_that_rebuild_tables_keep_every_row_of_a_repair(empty_url, tmp_path):
    """On SQLite, 0004 rebuilds tickets and cost_lines (copy, drop, rename). With foreign keys
    enforced, dropping a table that others point at would fail or take their rows with it:
    the migrations must run without them and put them back on."""
    from flask_migrate import downgrade

    from servicedesk.lifecycle import Actor
    from servicedesk.models import CostLine, Notification, Ticket, TicketEvent
    from servicedesk.services import tickets as svc

    from .conftest import INTAKE, SAMPLE_DATA, add_user

    app = bare_app(empty_url, tmp_path)
    with app.app_context():
        try:
            upgrade()
            from servicedesk.cli import ensure_default_branch
            ensure_default_branch()
            reception = Actor.staff(add_user("reception1", "reception"))
            technician = Actor.staff(add_user("technician1", "technician"))
            ticket_id = svc.admit(INTAKE, reception).id
            svc.fire_event(ticket_id, "send_to_repair", reception, {"technician": "technician1"})
            svc.fire_event(ticket_id, "quote", technician, SAMPLE_DATA["quote"])

            def rows():
                db.session.expire_all()
                return {model.__tablename__: db.session.scalar(
                    sa.select(sa.func.count()).select_from(model)) for model in
                    (Ticket, TicketEvent, CostLine, Notification)}
            before = rows()
            assert before["cost_lines"] == len(SAMPLE_DATA["quote"]["lines"])
            db.session.remove()
            downgrade(revision="0003")
            upgrade()
            assert rows() == before
            ticket = db.session.get(Ticket, ticket_id)
            assert ticket.state == "estimate" and len(ticket.events) == 3
            if db.engine.dialect.name == "sqlite":  # and the app's connections enforce again
                with db.engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        finally:
            db.session.remove()
            db.engine.dispose()


def test_known_brands_already_stored_get_their_one_spelling(empty_url, tmp_path):
    """0008: devices (and stage rows) admitted before intake stored one spelling per brand
    are given it, so the reports' filter and the warranty check find them."""
    from flask_migrate import downgrade
    app = bare_app(empty_url, tmp_path)
    with app.app_context():
        try:
            upgrade()
            downgrade(revision="0007")
            db.session.execute(sa.text(
                "INSERT INTO customers (name, phone, language, sms_opt_out, created_at) "
                "VALUES ('X', '+989121234567', 'fa', false, CURRENT_TIMESTAMP)"))
            for brand in ("samsung ", "سامسونگ", "نوكيا", "Fairphone"):
                db.session.execute(sa.text(
                    "INSERT INTO devices (customer_id, kind, brand, model, serial, colour) "
                    "VALUES (1, 'phone', :brand, 'M', '', '')"), {"brand": brand})
            # the reports' stage rows carry the brand too (what the brand filter reads)
            db.session.execute(sa.text(
                "INSERT INTO branches (name, code, active, created_at) "
                "VALUES ('B', 'A', true, CURRENT_TIMESTAMP)"))
            db.session.execute(sa.text(
                "INSERT INTO tickets (number, branch_id, customer_id, device_id, problem, "
                "accessories, condition, service_type, state, estimate_version, public_token, "
                "created_at, updated_at, version) VALUES ('A-00001', 1, 1, 1, 'P', '', '', "
                "'repair', 'closed', 0, 'TOKEN', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
            for stage, brand in (("repair", "samsung "), ("delivery", "Fairphone")):
                db.session.execute(sa.text(
                    "INSERT INTO ticket_stages (ticket_id, stage, started_at, ended_at, "
                    "seconds, end_event, branch_id, service_type, brand) VALUES (1, :stage, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 60, 'finish', 1, 'repair', :brand)"),
                    {"stage": stage, "brand": brand})
            db.session.commit()
            upgrade()
            brands = db.session.execute(sa.text(
                "SELECT brand FROM devices ORDER BY id")).scalars().all()
            assert brands == ["Samsung", "Samsung", "Nokia", "Fairphone"]
            staged = db.session.execute(sa.text(
                "SELECT brand FROM ticket_stages ORDER BY id")).scalars().all()
            assert staged == ["Samsung", "Fairphone"]
            # the revision's frozen copy reads these as intake does
            import importlib.util
            from servicedesk.devices import brand_name
            path = ROOT / "migrations" / "versions" / "0008_one_spelling_per_brand.py"
            spec = importlib.util.spec_from_file_location("m0008", path)
            frozen = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(frozen)
            assert all(frozen.brand_name(t) == brand_name(t) for t in
                       ("samsung ", "نوكيا", "وان\u200cپلاس", "iPhone", "Fairphone"))
        finally:
            db.session.remove()
            db.engine.dispose()


def test_who_brought_a_device_in_moves_from_the_admit_event_to_the_ticket(empty_url, tmp_path):
    """0013: tickets admitted for a relative before the ticket kept ``brought_by`` get it from
    their admit event, so the desk's search finds them by that name too."""
    from flask_migrate import downgrade

    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as svc

    from .conftest import INTAKE, add_user

    app = bare_app(empty_url, tmp_path)
    with app.app_context():
        try:
            upgrade()
            from servicedesk.cli import ensure_default_branch
            ensure_default_branch()
            reception = Actor.staff(add_user("reception1", "reception"))
            first, second = (svc.admit(INTAKE, reception).id for _ in range(2))
            db.session.remove()
            downgrade(revision="0012")
            db.session.execute(sa.text(
                "UPDATE ticket_events SET data = '{\"brought_by\": \"Samira Jafari\"}' "
                "WHERE ticket_id = :id AND event = 'admit'"), {"id": first})
            db.session.commit()
            upgrade()
            kept = dict(db.session.execute(sa.text("SELECT id, brought_by FROM tickets")).all())
            assert kept == {first: "Samira Jafari", second: None}
        finally:
            db.session.remove()
            db.engine.dispose()


def test_loans_keep_one_loaner_out_per_ticket_and_go_down_cleanly(empty_url, tmp_path):
    """0014: the loans table, whose partial unique index takes any number of loaners taken back
    but one out per ticket (the models' comparison does not read an index's WHERE); down to
    0013 it goes, and comes back."""
    from flask_migrate import downgrade

    from servicedesk.lifecycle import Actor
    from servicedesk.services import loaners
    from servicedesk.services import tickets as svc

    from .conftest import INTAKE, add_user

    app = bare_app(empty_url, tmp_path)
    with app.app_context():
        try:
            upgrade()
            from servicedesk.cli import ensure_default_branch
            ensure_default_branch()
            desk = Actor.staff(add_user("reception1", "reception"))
            ticket_id = svc.admit(INTAKE, desk).id
            for name in ("Nokia 105", "Samsung A10"):
                loaners.lend(ticket_id, desk, {"description": name})
                loaners.take_back(ticket_id, desk)
            loaners.lend(ticket_id, desk, {"description": "Nokia 105"})
            with pytest.raises(sa.exc.IntegrityError):
                db.session.execute(sa.text(
                    "INSERT INTO loans (ticket_id, description, condition, lent_at, "
                    "lent_by_name) VALUES (:t, 'second', '', CURRENT_TIMESTAMP, 'x')"),
                    {"t": ticket_id})
            db.session.rollback()
            db.session.remove()
            downgrade(revision="0013")
            assert "loans" not in sa.inspect(db.engine).get_table_names()
            upgrade()
            assert "loans" in sa.inspect(db.engine).get_table_names()
        finally:
            db.session.remove()
            db.engine.dispose()


def test_who_stopped_a_customers_sms_moves_from_the_audit_log_to_the_customer(empty_url,
                                                                            tmp_path):
    """0015: a customer whose SMS are stopped gets who stopped them from their last
    ``customer.sms`` record: the number's STOP reply, the desk, their page; started again
    since, or stopped with no record (the demo's), nobody."""
    from flask_migrate import downgrade

    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as svc

    from .conftest import INTAKE, add_user

    app = bare_app(empty_url, tmp_path)
    with app.app_context():
        try:
            upgrade()
            from servicedesk.cli import ensure_default_branch
            ensure_default_branch()
            desk = Actor.staff(add_user("reception1", "reception"))
            ids = [svc.admit({**INTAKE, "customer": {"name": f"C{n}",
                                                     "phone": f"0912111000{n}"}}, desk)
                   .customer_id for n in range(5)]
            stop, link, staff, again, demo = ids
            db.session.remove()
            downgrade(revision="0014")
            for customer, rows in ((stop, [{"sms": False, "how": "stop"}]),
                                   (link, [{"sms": False, "how": "stop"},
                                           {"sms": True, "how": "staff"},
                                           {"sms": False, "how": "link"}]),
                                   (staff, [{"sms": False, "how": "staff"}]),
                                   (again, [{"sms": False, "how": "stop"},
                                            {"sms": True, "how": "number corrected"}])):
                for row in rows:
                    db.session.execute(sa.text(
                        "INSERT INTO audit_log (at, actor_name, action, object_type, "
                        "object_id, value_to) VALUES (CURRENT_TIMESTAMP, '', 'customer.sms', "
                        "'customers', :id, :to)").bindparams(sa.bindparam("to", type_=sa.JSON)),
                        {"id": str(customer), "to": row})
            db.session.execute(sa.text("UPDATE customers SET sms_opt_out = :t WHERE id IN "
                                       "(:a, :b, :c, :d)"),
                               {"t": True, "a": stop, "b": link, "c": staff, "d": demo})
            db.session.commit()
            upgrade()
            kept = dict(db.session.execute(sa.text(
                "SELECT id, opted_out_by FROM customers")).all())
            assert kept == {stop: "stop", link: "link", staff: "staff", again: None,
                            demo: None}
            db.session.remove()
            downgrade(revision="0014")
            assert "opted_out_by" not in {c["name"] for c in
                                          sa.inspect(db.engine).get_columns("customers")}
            upgrade()
        finally:
            db.session.remove()
            db.engine.dispose()


def test_a_loaner_label_is_once_per_branch_in_use_whatever_its_case(empty_url, tmp_path):
    """0016: uq_loaners_label_in_use is on lower(label) (on SQLite the models' comparison
    cannot read an expression index: what it refuses is checked here), partial on the phones
    in use; down to 0015 and back."""
    from flask_migrate import downgrade

    from servicedesk.cli import ensure_default_branch

    app = bare_app(empty_url, tmp_path)
    insert = sa.text("INSERT INTO loaners (branch_id, label, model, notes, condition, "
                     "condition_note, retired_at, created_at) VALUES (:b, :label, 'Nokia', '', "
                     "'fine', '', :retired, CURRENT_TIMESTAMP)")
    with app.app_context():
        try:
            upgrade()
            branch_id = ensure_default_branch().id
            db.session.execute(insert, {"b": branch_id, "label": "A1", "retired": None})
            with pytest.raises(sa.exc.IntegrityError):
                db.session.execute(insert, {"b": branch_id, "label": "a1", "retired": None})
            db.session.rollback()
            db.session.execute(insert, {"b": branch_id, "label": "A1", "retired": None})
            db.session.execute(insert, {"b": branch_id, "label": "a1",
                                        "retired": "2026-01-01 00:00:00"})
            db.session.commit()
            db.session.remove()
            downgrade(revision="0015")
            assert "loaners" not in sa.inspect(db.engine).get_table_names()
            upgrade()
        finally:
            db.session.remove()
            db.engine.dispose()


def test_tickets_from_before_the_pickup_codes_keep_none_and_go_down_cleanly(empty_url, tmp_path):
    """0017: tickets admitted before the pickup codes get none (their receipts were printed
    without one) and no wrong tries; new ones get their code; down to 0016 and back."""
    from flask_migrate import downgrade

    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as svc

    from .conftest import INTAKE, add_user

    app = bare_app(empty_url, tmp_path)
    with app.app_context():
        try:
            upgrade()
            from servicedesk.cli import ensure_default_branch
            ensure_default_branch()
            reception = Actor.staff(add_user("reception1", "reception"))
            old = svc.admit(INTAKE, reception).id
            db.session.remove()
            downgrade(revision="0016")
            columns = {c["name"] for c in sa.inspect(db.engine).get_columns("tickets")}
            assert "pickup_code" not in columns and "pickup_tries" not in columns
            upgrade()
            row = db.session.execute(sa.text(
                "SELECT pickup_code, pickup_tries, pickup_otp_hash FROM tickets WHERE id = :id"),
                {"id": old}).one()
            assert tuple(row) == (None, 0, None)
            db.session.remove()
            new = svc.admit(INTAKE, reception)
            assert new.pickup_code and len(new.pickup_code) == 6
        finally:
            db.session.remove()
            db.engine.dispose()
