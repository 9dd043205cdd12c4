"""The bare floor: the least a Flask endpoint under gunicorn can do to take in a ticket.

``POST /tickets`` parses a JSON body and commits one transaction of three rows (a customer, a
ticket, an event), then answers 201 with the ticket's id; nothing else: no login, no
validation, no templates, no audit chain, no outbox. Same stack as Servicedesk (Flask,
SQLAlchemy 2 Core with its default pool, psycopg 3 or the stdlib sqlite3, gunicorn) and the
same connection settings (on SQLite, Servicedesk's own pragmas: WAL, synchronous=NORMAL, the
busy timeout), so the gap between this and Servicedesk's intake is what the application itself
costs, not a difference in how the database file is written.

    python bench/floor_app.py init URL          # create the three tables
    FLOOR_DATABASE_URL=URL gunicorn -w 2 -k gthread --threads 4 bench.floor_app:app
"""
import os
import sys
from datetime import datetime, timezone

import sqlalchemy as sa
from flask import Flask, jsonify, request

metadata = sa.MetaData()
customers = sa.Table(
    "floor_customers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("phone", sa.String(20), nullable=False))
tickets = sa.Table(
    "floor_tickets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.ForeignKey("floor_customers.id"), nullable=False),
    sa.Column("problem", sa.Text, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False))
events = sa.Table(
    "floor_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket_id", sa.ForeignKey("floor_tickets.id"), nullable=False),
    sa.Column("event", sa.String(30), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False))


def engine_for(url: str) -> sa.engine.Engine:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    engine = sa.create_engine(url, pool_pre_ping=True)  # as Servicedesk's default config
    if engine.dialect.name == "sqlite":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from servicedesk.embedded import pragmas  # the very function Servicedesk's engine runs
        sa.event.listen(engine, "connect", pragmas)
    return engine


def create_app(url: str) -> Flask:
    app = Flask(__name__)
    engine = engine_for(url)

    @app.post("/tickets")
    def intake():
        data = request.get_json()
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with engine.begin() as conn:
            customer_id = conn.execute(customers.insert().values(
                name=data["customer"]["name"], phone=data["customer"]["phone"])
            ).inserted_primary_key[0]
            ticket_id = conn.execute(tickets.insert().values(
                customer_id=customer_id, problem=data["problem"], state="intake",
                created_at=now)).inserted_primary_key[0]
            conn.execute(events.insert().values(ticket_id=ticket_id, event="admit", at=now))
        return jsonify({"id": ticket_id, "state": "intake"}), 201

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "init":
        sys.exit(__doc__)
    eng = engine_for(sys.argv[2])
    metadata.drop_all(eng)
    metadata.create_all(eng)
    eng.dispose()
else:
    app = create_app(os.environ.get("FLOOR_DATABASE_URL", "sqlite:////tmp/sd-floor.db"))
