"""Indexes for the two repair-queue counts

Revision ID: 0006
Revises: 0005

"Devices ahead of yours" is counted on every tracking page of a ticket in diagnosis or repair
(by ``created_at``) and in the ``send_to_repair`` SMS (by ``updated_at``): within one branch and
state, the tickets before this one. With only ``ix_tickets_state`` PostgreSQL visits every
ticket in that state (a bitmap heap scan: ~10 ms with 9,000 tickets in diagnosis); with
(branch_id, state, time, id) it counts from the index alone (~1 ms). ``id`` is in the key, not
INCLUDE, so SQLite gets the same covering index.
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_tickets_branch_state_created', 'tickets',
                    ['branch_id', 'state', 'created_at', 'id'])
    op.create_index('ix_tickets_branch_state_updated', 'tickets',
                    ['branch_id', 'state', 'updated_at', 'id'])


def downgrade():
    op.drop_index('ix_tickets_branch_state_updated', table_name='tickets')
    op.drop_index('ix_tickets_branch_state_created', table_name='tickets')
