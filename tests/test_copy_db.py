"""`flask --app wsgi copy-db SOURCE_URL` (deploy/README.md, "Moving from the embedded database to
PostgreSQL"), done for real: a SQLite shop with a working day behind it, made by init-db and
the app's own services and API, copied into a fresh PostgreSQL database made by init-db. Every
row arrives as it was, the audit chains verify, the same API token reads the same tickets, and
the next intake, event, visit and user get the next ids (no duplicate key). A copy that is
refused (a target not empty, a revision that differs) or that fails half way changes nothing.

Runs on PostgreSQL whatever TEST_DATABASE_URL says, as tests/test_backup.py does: the move to
PostgreSQL is the point (on SQLite there are no sequences to get wrong)."""
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from servicedesk import create_app
from servicedesk.extensions import db
from servicedesk.lifecycle import STAFF_ROLES, Actor

from .conftest import (INTAKE, LINES, PATH_TO, ROOT, SAMPLE_DATA, _pg_url, actor_for, add_user,
                       create_pg_database, drop_pg_database, kept_logging)

# The revision before the code's head (migrations/versions): a database one upgrade behind.
PREVIOUS_REVISION = "0010"


def shop_app(url: str, instance: Path):
    """The app as production builds it on ``url``: no create_all, nothing truncated (the
    conftest's make_app resets tables, which would hide what init-db and the copy did)."""
    config = {}
    exec((ROOT / "config" / "testing.py").read_text(), config)
    # an English shop: these tests read the command's words (test_cli reads them in Persian)
    app = create_app({**{k: v for k, v in config.items() if k.isupper()}, "DATABASE_URL": url,
                      "SERVICEDESK_LOCALE": "en"})
    app.instance_path = str(instance)
    return app


def flask(app, *args):
    """`flask --app wsgi ARGS` against ``app``, each in an app context of its own as the real
    command line has."""
    with kept_logging(), app.app_context():
        result = app.test_cli_runner().invoke(args=list(args))
        db.session.remove()
    return result


def init_db(app, revision=None):
    if revision is None:
        result = flask(app, "init-db")
        assert result.exit_code == 0, result.output
        return
    with kept_logging(), app.app_context():  # migrated part way, as an older release left it
        upgrade(directory=str(ROOT / "migrations"), revision=revision)
        db.session.remove()


def dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def dump(url: str) -> dict:
    """Every row of every table the models know, in key order, read through the models' column
    types (aware timestamps, booleans, dates, parsed JSON), plus each JSON column's text as
    stored (SQL NULL and JSON null told apart)."""
    from servicedesk import _database_url
    engine = sa.create_engine(_database_url(url))
    out = {}
    try:
        with engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                raw = [sa.cast(c, sa.Text).label(f"{c.name} (text)") for c in table.c
                       if isinstance(c.type, sa.JSON)]
                rows = conn.execute(sa.select(*table.c, *raw)
                                    .order_by(*table.primary_key.columns)).all()
                out[table.name] = [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()
    return out


def sequences(url: str) -> dict:
    """PostgreSQL's sequences: name -> (last value, is_called)."""
    from servicedesk import _database_url
    engine = sa.create_engine(_database_url(url))
    try:
        with engine.connect() as conn:
            names = conn.scalars(sa.text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).all()
            return {n: tuple(conn.execute(sa.text(f'SELECT last_value, is_called FROM "{n}"'))
                             .one()) for n in names}
    finally:
        engine.dispose()


# --- the shop that moves ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A SQLite shop made as `scripts/run` makes one (init-db), then a day of work through the
    services and the API: users and API tokens, settings, an SMS text and a service type (with
    their audit records), queue numbers issued and called, tickets in every state with their
    events, estimates and bills (one above 2**31 rials), SMS, a note, a hand-back with a refund,
    the till counted, a survey answer, a customer who stopped the SMS, a webhook and its
    delivery. Read-only for the tests that use it."""
    from servicedesk.services import admin as admin_svc
    from servicedesk.services import reception
    from servicedesk.services import tickets as svc
    from servicedesk.services.people import issue_token
    from servicedesk.services.surveys import submit_survey

    folder = tmp_path_factory.mktemp("shop")
    path = folder / "servicedesk.db"
    app = shop_app(f"sqlite:///{path}", folder)
    init_db(app)
    with app.app_context():
        users = {role: add_user(role + "1", role) for role in STAFF_ROLES}
        tokens = {role: issue_token(user, "copy test") for role, user in users.items()}
        admin = users["admin"]
        settings = admin_svc.current_settings()
        admin_svc.update_settings(admin, {**settings, "shop_name": "تعمیرگاه نمونه",
                                          "state_time_limits": {"diagnosis": 24}})
        admin_svc.save_template(admin, "admit", "en", body="Your device is with us.",
                                enabled=False)
        admin_svc.save_service_type(admin, None, code="screen_guard", name_fa="محافظ صفحه",
                                    name_en="Screen guard")
        _, till = admin_svc.create_api_token(admin, users["manager"].id, "till")
        spare, _ = admin_svc.create_api_token(admin, users["manager"].id, "spare")
        admin_svc.revoke_api_token(admin, users["manager"].id, spare.id)

        client = app.test_client()
        auth = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
        for phone in ("09121110001", None, "09121110002"):
            issued = client.post("/api/v1/visits", headers=auth["reception"],
                                 json={"service": "repair", **({"phone": phone} if phone else {})})
            assert issued.status_code == 201, issued.get_data(as_text=True)
        called = client.post("/api/v1/visits/next", headers=auth["reception"],
                             json={"counter": "2"})
        assert called.status_code == 200, called.get_data(as_text=True)

        # the accounting program hears of cancellations (down today: the delivery waits)
        from servicedesk.services import webhooks
        webhooks.save_endpoint(None, name="حسابداری", url="http://127.0.0.1:9/hook",
                               events=["cancel"], every_event=False, active=True)
        states = ["intake", "diagnosis", "estimate", "repair", "waiting_parts", "ready",
                  "delivered", "delivered", "closed", "cancelled"]
        ids = []
        for i, state in enumerate(states):
            intake = {**INTAKE, "customer": {"name": f"مشتری {i}", "phone": f"0912123450{i}"}}
            if i == 3:  # agreed at intake to any estimate up to 5 billion rials (a bigint)
                intake["pre_approved_amount"] = 5_000_000_000
            if i == 5:  # signed on the counter's screen (a picture: binary)
                from .test_signatures import SIGNED, data_url
                intake["signature"] = data_url(SIGNED)
            created = client.post("/api/v1/tickets", headers={**auth["reception"],
                                  "Idempotency-Key": f"desk-{i}"}, json=intake)
            assert created.status_code == 201, created.get_data(as_text=True)
            ticket_id = created.get_json()["id"]
            ids.append(ticket_id)
            for event in PATH_TO[state]:
                if i == 3 and event == "approve":
                    continue  # the estimate was within the pre-approved amount: approved
                data = dict(SAMPLE_DATA[event])
                if i == 3 and event == "quote":
                    data["lines"] = [{"kind": "part", "description": "Board", "qty": 1,
                                      "unit_price": 3_000_000_000}, *LINES]
                svc.fire_event(ticket_id, event, actor_for(event, users), data)
        from servicedesk.services import loaners  # one loaner out, one taken back
        loaners.lend(ids[2], Actor.staff(users["reception"]), {
            "description": "نوکیا ۱۰۵", "serial": "490154203237518"})
        loaners.lend(ids[4], Actor.staff(users["manager"]), {"description": "Samsung A10"})
        loaners.take_back(ids[4], Actor.staff(users["reception"]))
        phone = loaners.save_phone(users["manager"], None, {  # one of the shop's own, out
            "branch_id": svc.default_branch().id, "label": "A1", "model": "Nokia 105"})
        loaners.lend(ids[3], Actor.staff(users["reception"]), {"loaner_id": phone.id})
        delivered = ids[6]
        reception.refund(delivered, Actor.staff(users["manager"]),
                         {"amount": 1_000_000, "payment_method": "card",
                          "reason": "the case was scratched"})
        submit_survey(ids[7], {"csat": 2, "nps": 4, "comment": "=HYPERLINK(\"x\") slow",
                               "complaint": "on"}, ip="127.0.0.1")
        svc.add_note(ids[1], users["technician"], "قطعه سفارش داده شد", customer_visible=True)
        from servicedesk.reports import shop_today
        reception.count_till(svc.default_branch(), shop_today(), users["reception"],
                             1_000_000, 200_000, "شمارش پایان روز")
        customer_id = svc.get_ticket(ids[0]).customer_id
        svc.set_customer_sms(customer_id, False, by=users["reception"])
        # a customer's link forwarded by mistake: replaced (the old one's hash kept)
        svc.replace_link(ids[1], Actor.staff(users["reception"]), text_customer=False)

        # The app writes JSON null into an empty JSON field; a row written by SQL (a
        # migration's backfill, a hand fix) holds SQL NULL. The copy keeps the difference.
        from servicedesk.models import AuditLog
        db.session.execute(sa.insert(AuditLog).values(
            action="note.sql", actor_name="psql", value_from=sa.null(), value_to=None))
        db.session.commit()

        tickets = {}
        for ticket_id in ids:
            seen = client.get(f"/api/v1/tickets/{ticket_id}", headers=auth["admin"])
            assert seen.status_code == 200
            tickets[ticket_id] = seen.get_json()
        db.session.remove()
    dispose(app)
    url = f"sqlite:///{path}"
    rows = dump(url)
    empty = [name for name, table_rows in rows.items() if not table_rows]
    assert not empty, f"the shop should fill every table; empty: {empty}"
    assert {t["state"] for t in tickets.values()} == set(states)
    return {"url": url, "path": path, "tokens": {**tokens, "till": till}, "tickets": tickets,
            "rows": rows}


@pytest.fixture
def target(tmp_path):
    """A new, empty PostgreSQL database (as `createdb` makes one) and the app configured on it;
    init-db is each test's to run (or not)."""
    name = create_pg_database()
    url = _pg_url(name)
    app = shop_app(url, tmp_path / "target")
    yield url, app
    dispose(app)
    drop_pg_database(name)


# --- the move -----------------------------------------------------------------------------------

def test_copy_db_moves_the_sqlite_shop_to_postgresql_and_the_shop_carries_on(shop, target):
    url, app = target
    init_db(app)
    result = flask(app, "copy-db", shop["url"])
    assert result.exit_code == 0, result.output

    # Per table what was copied, and a last line with the total.
    for name, rows in shop["rows"].items():
        assert any(line.split() == [name, str(len(rows)), "rows"]
                   for line in result.output.splitlines()), (name, result.output)
    total = sum(len(rows) for rows in shop["rows"].values())
    assert f"Copied {total} rows in {len(shop['rows'])} tables" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Copied ")

    # Every row as it was: ids, aware timestamps (the same instants), booleans, dates,
    # money above 2**31, JSON parsed and as stored; the init-db branch gave way to the shop's.
    copied = dump(url)
    for name, rows in shop["rows"].items():
        assert len(copied[name]) == len(rows), name
        assert copied[name] == rows, name
    assert any(r["unit_price"] == 3_000_000_000 for r in copied["cost_lines"])
    assert any(r["sms_opt_out"] is True for r in copied["customers"])
    written_by_sql = [r for r in copied["audit_log"] if r["action"] == "note.sql"]
    assert [(r["value_from (text)"], r["value_to (text)"]) for r in written_by_sql] == \
        [(None, "null")]
    at = copied["ticket_events"][0]["at"]
    assert at.tzinfo is not None and at == shop["rows"]["ticket_events"][0]["at"]

    audit = flask(app, "verify-audit")
    assert audit.exit_code == 0, audit.output
    assert "Audit chain intact" in audit.output

    # Each id sequence stands at the largest id its table holds (the bug this command avoids:
    # a copy that left them at 1).
    with app.app_context():
        with db.engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                if "id" not in table.c:
                    continue
                sequence = conn.scalar(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                       {"t": table.name})
                assert sequence, table.name
                last, called = conn.execute(sa.text(
                    f"SELECT last_value, is_called FROM {sequence}")).one()
                assert (last, called) == (max(r["id"] for r in shop["rows"][table.name]), True), \
                    table.name
        dispose(app)

    with app.app_context():
        client = app.test_client()
        # The same API tokens (stored hashed) read the same tickets.
        auth = {"Authorization": f"Bearer {shop['tokens']['admin']}"}
        for ticket_id, expected in shop["tickets"].items():
            seen = client.get(f"/api/v1/tickets/{ticket_id}", headers=auth)
            assert seen.status_code == 200, seen.get_data(as_text=True)
            assert seen.get_json() == expected
        till = client.get("/api/v1/tickets",
                          headers={"Authorization": f"Bearer {shop['tokens']['till']}"})
        assert till.status_code == 200

        # The shop carries on: a new intake, its events (events, cost lines, stages, SMS), a
        # queue number, each with the next id and the next ticket number.
        reception = {"Authorization": f"Bearer {shop['tokens']['reception']}"}
        created = client.post("/api/v1/tickets", headers=reception, json={
            **INTAKE, "customer": {"name": "Hamid", "phone": "09351234567"}})
        assert created.status_code == 201, created.get_data(as_text=True)
        new = created.get_json()
        assert new["id"] == max(shop["tickets"]) + 1
        last_number = max(t["number"] for t in shop["tickets"].values())
        prefix, digits = last_number.split("-")
        assert new["number"] == f"{prefix}-{int(digits) + 1:0{len(digits)}d}"
        for event, role in (("send_to_repair", "reception"), ("quote", "technician")):
            headers = {"Authorization": f"Bearer {shop['tokens'][role]}"}
            data = {k: v for k, v in SAMPLE_DATA[event].items() if k != "technician"}
            moved = client.post(f"/api/v1/tickets/{new['id']}/events", headers=headers,
                                json={"event": event, **data})
            assert moved.status_code == 200, moved.get_data(as_text=True)
        visit = client.post("/api/v1/visits", headers=reception,
                            json={"service": "repair", "phone": "09351234567"})
        assert visit.status_code == 201, visit.get_data(as_text=True)
        assert visit.get_json()["id"] == max(r["id"] for r in shop["rows"]["visits"]) + 1
        db.session.remove()
    made = flask(app, "create-user", "newcomer", "--role", "technician")
    assert made.exit_code == 0, made.output

    after = dump(url)
    for name in ("tickets", "customers", "devices", "ticket_events", "cost_lines",
                 "ticket_stages", "notifications", "visits", "users"):
        assert len(after[name]) > len(shop["rows"][name]), name
        assert after[name][:len(shop["rows"][name])] == shop["rows"][name], name
    assert flask(app, "verify-audit").exit_code == 0

    # A second copy into the now-working database is refused and changes nothing.
    again = flask(app, "copy-db", shop["url"])
    assert again.exit_code == 1
    assert "not empty" in again.output and "init-db" in again.output
    assert dump(url) == after


# --- refusals: nothing written ------------------------------------------------------------------

def test_copy_db_refuses_a_target_that_holds_a_user(shop, target):
    url, app = target
    init_db(app)
    assert flask(app, "create-user", "owner", "--role", "admin").exit_code == 0
    before, numbers = dump(url), sequences(url)

    result = flask(app, "copy-db", shop["url"])
    assert result.exit_code == 1
    assert "not empty (rows: users 1)" in result.output
    assert "createdb" in result.output and "flask --app wsgi init-db" in result.output
    assert "copying" not in result.output
    assert dump(url) == before and sequences(url) == numbers


def test_copy_db_refuses_a_target_behind_the_source(shop, target):
    url, app = target
    init_db(app, revision=PREVIOUS_REVISION)
    before = dump_partial(url)

    result = flask(app, "copy-db", shop["url"])
    assert result.exit_code == 1
    assert f"The target is at revision {PREVIOUS_REVISION}" in result.output
    assert "run `flask --app wsgi init-db` on it" in result.output
    assert dump_partial(url) == before
    assert not any(before.values())


def test_copy_db_refuses_a_source_behind_the_target(target, tmp_path):
    url, app = target
    init_db(app)
    old = tmp_path / "old.db"
    old_app = shop_app(f"sqlite:///{old}", tmp_path / "old")
    init_db(old_app, revision=PREVIOUS_REVISION)
    dispose(old_app)
    before = dump(url)

    result = flask(app, "copy-db", f"sqlite:///{old}")
    assert result.exit_code == 1
    assert f"The source is at revision {PREVIOUS_REVISION}" in result.output
    assert "upgrade it with `DATABASE_URL=sqlite:///" in result.output
    assert dump(url) == before
    assert [r["code"] for r in before["branches"]] == ["A"]  # init-db's, still there


def test_copy_db_that_fails_half_way_writes_nothing(shop, target, tmp_path):
    """A row PostgreSQL refuses (SQLite keeps any length in a VARCHAR) in the last table copied:
    the tables before it were written in the same transaction, and are gone with it."""
    url, app = target
    init_db(app)
    poisoned = tmp_path / "poisoned.db"
    with sqlite3.connect(shop["path"]) as src, sqlite3.connect(poisoned) as dst:
        src.backup(dst)
    with sqlite3.connect(poisoned) as conn:
        conn.execute("UPDATE webhook_deliveries SET error = ? WHERE id = "
                     "(SELECT max(id) FROM webhook_deliveries)", ("x" * 300,))
    before, numbers = dump(url), sequences(url)
    last = [t.name for t in db.metadata.sorted_tables][-1]
    assert last == "webhook_deliveries"

    result = flask(app, "copy-db", str(poisoned))  # a plain path is taken as a SQLite file
    assert result.exit_code == 1, result.output
    assert "Copying webhook_deliveries failed" in result.output
    assert "nothing was written to the target" in result.output
    assert "  tickets " in result.output  # it got that far
    assert dump(url) == before and sequences(url) == numbers


def test_copy_db_refuses_a_source_it_cannot_use(tmp_path):
    """No PostgreSQL needed: each is refused before anything is read or written."""
    app = shop_app(f"sqlite:///{tmp_path / 'target.db'}", tmp_path / "target")
    init_db(app)
    missing = tmp_path / "nowhere.db"
    stranger = tmp_path / "stranger.db"
    sqlite3.connect(stranger).execute("CREATE TABLE things (id integer)").connection.close()
    newer = tmp_path / "newer.db"
    newer_app = shop_app(f"sqlite:///{newer}", tmp_path / "newer")
    init_db(newer_app)
    dispose(newer_app)
    with sqlite3.connect(newer) as conn:  # as a later release would leave it
        conn.execute("UPDATE alembic_version SET version_num = '0999'")
    try:
        for source in (str(missing), f"sqlite:///{missing}"):
            result = flask(app, "copy-db", source)
            assert result.exit_code == 1
            assert str(missing) in result.output
            assert not missing.exists()  # not created empty on the way
        same = flask(app, "copy-db", f"sqlite:///{tmp_path / 'target.db'}")
        assert same.exit_code == 1 and "the same database" in same.output
        foreign = flask(app, "copy-db", str(stranger))
        assert foreign.exit_code == 1
        assert "is not a Servicedesk database" in foreign.output
        ahead = flask(app, "copy-db", str(newer))
        assert ahead.exit_code == 1
        assert "revision 0999, which this code" in ahead.output
        assert "newer release" in ahead.output
        assert [len(rows) for rows in dump(f"sqlite:///{tmp_path / 'target.db'}").values()] \
            == [1] + [0] * (len(db.metadata.tables) - 1)  # init-db's branch, nothing else
    finally:
        dispose(app)


def dump_partial(url: str) -> dict:
    """Row counts of the tables present (a database migrated part way lacks some columns)."""
    from servicedesk import _database_url
    engine = sa.create_engine(_database_url(url))
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {n: conn.scalar(sa.text(f'SELECT count(*) FROM "{n}"'))
                    for n in names if n != "alembic_version"}
    finally:
        engine.dispose()
