"""reports: stage durations (ticket_stages) and the indexes the reports read

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00

``ticket_stages`` holds one row per closed stage of a ticket (servicedesk/stages.py writes them
as events fire); the upgrade derives the rows of the tickets already here from their event log,
in a few set-based statements (a frozen copy of ``servicedesk.stages.rebuild_statements``).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('ticket_stages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('end_event', sa.String(length=24), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('technician_id', sa.Integer(), nullable=True),
    sa.Column('service_type', sa.String(length=40), nullable=False),
    sa.Column('brand', sa.String(length=60), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_ticket_stages_branch_id_branches')),
    sa.ForeignKeyConstraint(['technician_id'], ['users.id'], name=op.f('fk_ticket_stages_technician_id_users')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_stages_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_stages')),
    sa.UniqueConstraint('ticket_id', 'stage', name=op.f('uq_ticket_stages_ticket_id_stage'))
    )
    with op.batch_alter_table('ticket_stages', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_stages_turnaround', ['stage', 'ended_at', 'started_at', 'seconds'], unique=False)
        batch_op.create_index('ix_ticket_stages_technician', ['technician_id', 'stage', 'ended_at'], unique=False)

    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_events_report', ['event', 'at', 'ticket_id'], unique=False)

    with op.batch_alter_table('cost_lines', schema=None) as batch_op:
        batch_op.create_index('ix_cost_lines_report', ['ticket_id', 'stage', 'kind', 'estimate_version', 'qty', 'unit_price'], unique=False)

    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_queue_report', ['issued_at'], unique=False)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_sms_report', ['created_at'], unique=False)

    bind = op.get_bind()
    for statement in _backfill(bind.dialect.name):
        bind.execute(sa.text(statement))


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_sms_report')

    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ix_visits_queue_report')

    with op.batch_alter_table('cost_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_cost_lines_report')

    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_events_report')

    with op.batch_alter_table('ticket_stages', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_stages_technician')
        batch_op.drop_index('ix_ticket_stages_turnaround')

    op.drop_table('ticket_stages')


# --- backfill: the stage rows of the tickets already here, from their event log ----------------
# Frozen with this revision (migrations do not import application code that changes later).

_COLUMNS = ("ticket_id, stage, started_at, ended_at, seconds, end_event, branch_id, "
            "technician_id, service_type, brand")
_DIMS = "t.branch_id, t.technician_id, t.service_type, d.brand"
_READY_BY = "'finish', 'decline', 'return_unrepaired'"


def _seconds(dialect, start, end):
    if dialect == "postgresql":
        return (f"CAST(FLOOR(EXTRACT(EPOCH FROM {end})) - FLOOR(EXTRACT(EPOCH FROM {start}))"
                f" AS INTEGER)")
    return f"(CAST(strftime('%s', {end}) AS INTEGER) - CAST(strftime('%s', {start}) AS INTEGER))"


def _backfill(dialect):
    secs = lambda a, b: _seconds(dialect, a, b)  # noqa: E731
    insert = f"INSERT INTO ticket_stages ({_COLUMNS}) "
    pair = ("SELECT t.id, '{stage}', s.at, e.at, {secs}, e.event, " + _DIMS + " "
            "FROM ticket_events e "
            "JOIN ticket_events s ON s.ticket_id = e.ticket_id AND s.event IN ({opens}) "
            "AND s.seq < e.seq "
            "JOIN tickets t ON t.id = e.ticket_id JOIN devices d ON d.id = t.device_id "
            "WHERE e.event IN ({closes})")
    stmts = [
        insert + "SELECT t.id, 'queue_wait', v.issued_at, v.called_at, "
        + secs("v.issued_at", "v.called_at") + ", 'admit', "
        "t.branch_id, NULL, t.service_type, d.brand "
        "FROM tickets t JOIN visits v ON v.id = t.visit_id "
        "JOIN devices d ON d.id = t.device_id "
        "WHERE v.called_at IS NOT NULL AND EXISTS (SELECT 1 FROM ticket_events a "
        "WHERE a.ticket_id = t.id AND a.event = 'admit')",
    ]
    for stage, opens, closes in (("intake", "'admit'", "'send_to_repair'"),
                                 ("diagnosis", "'send_to_repair'", "'quote'"),
                                 ("approval", "'quote'", "'approve', 'decline'"),
                                 ("pickup", _READY_BY, "'deliver'"),
                                 ("total", "'admit'", "'deliver'")):
        stmts.append(insert + pair.format(stage=stage, secs=secs("s.at", "e.at"), opens=opens,
                                          closes=closes))
    waits = ("WITH w AS (SELECT ticket_id, at, ROW_NUMBER() OVER (PARTITION BY ticket_id "
             "ORDER BY seq) AS k FROM ticket_events WHERE event = 'wait_parts'), "
             "r AS (SELECT ticket_id, at, ROW_NUMBER() OVER (PARTITION BY ticket_id "
             "ORDER BY seq) AS k FROM ticket_events WHERE event = 'resume'), "
             "waits AS (SELECT w.ticket_id, MIN(w.at) AS first_at, MAX(r.at) AS last_at, "
             "SUM(" + secs("w.at", "r.at") + ") AS secs FROM w "
             "JOIN r ON r.ticket_id = w.ticket_id AND r.k = w.k GROUP BY w.ticket_id) ")
    stmts.append(waits + insert + "SELECT t.id, 'repair', a.at, f.at, "
                 + secs("a.at", "f.at") + " - COALESCE(waits.secs, 0), 'finish', " + _DIMS
                 + " FROM ticket_events f "
                 "JOIN ticket_events a ON a.ticket_id = f.ticket_id AND a.event = 'approve' "
                 "JOIN tickets t ON t.id = f.ticket_id JOIN devices d ON d.id = t.device_id "
                 "LEFT JOIN waits ON waits.ticket_id = f.ticket_id "
                 "WHERE f.event = 'finish'")
    stmts.append(waits + insert + "SELECT t.id, 'waiting_parts', waits.first_at, "
                 "waits.last_at, waits.secs, 'finish', " + _DIMS + " FROM waits "
                 "JOIN ticket_events f ON f.ticket_id = waits.ticket_id AND f.event = 'finish' "
                 "JOIN tickets t ON t.id = waits.ticket_id "
                 "JOIN devices d ON d.id = t.device_id WHERE 1 = 1")
    stmts.append(insert + "SELECT t.id, 'returned', dl.ended_at, MIN(a2.at), "
                 + secs("dl.ended_at", "MIN(a2.at)") + ", 'admit', " + _DIMS + " "
                 "FROM ticket_stages dl "
                 "JOIN ticket_stages rp ON rp.ticket_id = dl.ticket_id AND rp.stage = 'repair' "
                 "JOIN tickets t ON t.id = dl.ticket_id JOIN devices d ON d.id = t.device_id "
                 "JOIN tickets t2 ON t2.customer_id = t.customer_id AND t2.id <> t.id "
                 "JOIN devices d2 ON d2.id = t2.device_id AND d2.brand = d.brand "
                 "AND d2.model = d.model "
                 "JOIN ticket_events a2 ON a2.ticket_id = t2.id AND a2.event = 'admit' "
                 "AND a2.at >= dl.ended_at "
                 "WHERE dl.stage = 'pickup' "
                 "GROUP BY t.id, dl.ended_at, t.branch_id, t.technician_id, t.service_type, "
                 "d.brand")
    return stmts
