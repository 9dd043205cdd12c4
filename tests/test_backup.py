"""Backup and restore of PostgreSQL, done once for real (deploy/README.md, "Backup and restore"):
pg_dump a database holding a few tickets, pg_restore it into a fresh database, and the app on
the restored database serves the same tickets to the same API token, keeps their audit chains,
and carries on numbering where the original stopped.

Runs on PostgreSQL whatever TEST_DATABASE_URL says: the backup is a PostgreSQL procedure. The
client tools are the machine's (Debian's postgresql-client, the server's major version)."""
import shutil
import subprocess
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import select

from servicedesk import create_app
from servicedesk.extensions import db
from servicedesk.lifecycle import verify_chain
from servicedesk.models import Ticket

from .conftest import (INTAKE, PG_ADMIN_URL, PATH_TO, SAMPLE_DATA, _pg_url, actor_for,
                       add_user, create_pg_database, drop_pg_database, make_app)

ROOT = Path(__file__).resolve().parent.parent


def pg_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run pg_dump/pg_restore against the test server, as the admin URL's user."""
    url = sa.engine.make_url(PG_ADMIN_URL)
    binary = shutil.which(name)
    assert binary, f"{name} is not installed (Debian: apt-get install postgresql-client)"
    done = subprocess.run([binary, "--host", url.host or "127.0.0.1",
                           "--port", str(url.port or 5432), "--username", url.username,
                           "--no-password", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr}"
    return done


def fill_shop(app) -> tuple[str, dict]:
    """A few tickets in different states, with events, cost lines and SMS rows; returns a
    receptionist's API token and what the API says of each ticket."""
    from servicedesk.services import tickets as svc
    from servicedesk.services.people import issue_token
    from servicedesk.lifecycle import STAFF_ROLES, Actor

    users = {role: add_user(role + "1", role) for role in STAFF_ROLES}
    token = issue_token(users["reception"], "backup test")
    for i, state in enumerate(["intake", "estimate", "repair", "delivered", "cancelled"]):
        customer = {"name": f"مشتری {i}", "phone": f"0912123450{i}"}
        ticket = svc.admit({**INTAKE, "customer": customer}, Actor.staff(users["reception"]))
        for event in PATH_TO[state]:
            svc.fire_event(ticket.id, event, actor_for(event, users), dict(SAMPLE_DATA[event]))
    client = app.test_client()
    seen = {}
    for ticket_id in db.session.scalars(select(Ticket.id).order_by(Ticket.id)):
        response = client.get(f"/api/v1/tickets/{ticket_id}",
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        seen[ticket_id] = response.get_json()
    return token, seen


def restored_app(url: str, instance: Path):
    """The app pointed at the restored database, built as production builds it: no schema
    work, nothing created or truncated (make_app would reset the tables)."""
    config = {}
    exec((ROOT / "config" / "testing.py").read_text(), config)
    app = create_app({**{k: v for k, v in config.items() if k.isupper()}, "DATABASE_URL": url})
    app.instance_path = str(instance)
    return app


def test_pg_dump_restored_into_a_fresh_database_serves_the_same_tickets(tmp_path):
    source = create_pg_database()
    target = None
    try:
        app = make_app(_pg_url(source), tmp_path / "source")
        with app.app_context():
            token, before = fill_shop(app)
            db.session.remove()
            db.engine.dispose()
        assert len(before) == 5
        assert {t["state"] for t in before.values()} == {
            "intake", "estimate", "repair", "delivered", "cancelled"}

        # The documented procedure: custom-format dump, restore into a new, empty database.
        dump = tmp_path / "servicedesk.dump"
        pg_tool("pg_dump", "--format=custom", "--no-owner", "--file", str(dump), source)
        listing = pg_tool("pg_restore", "--list", str(dump)).stdout
        assert "TABLE DATA public tickets" in listing
        target = create_pg_database()
        pg_tool("pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
                "--dbname", target, str(dump))

        app = restored_app(_pg_url(target), tmp_path / "target")
        with app.app_context():
            client = app.test_client()
            auth = {"Authorization": f"Bearer {token}"}
            for ticket_id, expected in before.items():
                response = client.get(f"/api/v1/tickets/{ticket_id}", headers=auth)
                assert response.status_code == 200, response.get_data(as_text=True)
                assert response.get_json() == expected
            for ticket in db.session.scalars(select(Ticket)):
                assert verify_chain(ticket) is None, f"audit chain of {ticket.number} broken"

            # Sequences came back too: new rows continue after the restored ones.
            ticket_id = min(t for t, v in before.items() if v["state"] == "intake")
            moved = client.post(f"/api/v1/tickets/{ticket_id}/events", headers=auth,
                                json={"event": "send_to_repair"})
            assert moved.status_code == 200, moved.get_data(as_text=True)
            assert moved.get_json()["state"] == "diagnosis"
            created = client.post("/api/v1/tickets", headers=auth, json={
                **INTAKE, "customer": {"name": "Hamid", "phone": "09351234567"}})
            assert created.status_code == 201, created.get_data(as_text=True)
            assert created.get_json()["id"] > max(before)
            assert created.get_json()["number"] not in {t["number"] for t in before.values()}
            db.session.remove()
            db.engine.dispose()
    finally:
        drop_pg_database(source)
        if target:
            drop_pg_database(target)
