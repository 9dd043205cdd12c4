"""Who brought the device in, on the ticket: tickets.brought_by

Revision ID: 0013
Revises: 0012

Kept until now only in the admit event's data (a family sharing one mobile number: the son
brings his mother's phone). On the ticket, the desk's search finds it by the name of the one who
comes back for it. Filled from the admit events already there.
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('tickets', sa.Column('brought_by', sa.String(length=120), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE tickets SET brought_by = e.data ->> 'brought_by' FROM ticket_events e "
                   "WHERE e.ticket_id = tickets.id AND e.event = 'admit' "
                   "AND e.data ->> 'brought_by' IS NOT NULL")
    else:
        op.execute("UPDATE tickets SET brought_by = (SELECT json_extract(e.data, '$.brought_by') "
                   "FROM ticket_events e WHERE e.ticket_id = tickets.id AND e.event = 'admit') "
                   "WHERE EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = tickets.id "
                   "AND e.event = 'admit' AND json_extract(e.data, '$.brought_by') IS NOT NULL)")


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('brought_by')
