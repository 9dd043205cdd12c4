"""The send_to_repair SMS counts the repair queue as the tracking page does

Revision ID: 0007
Revises: 0006

Both now count the devices admitted before this one (the order of the repair unit's queue),
so ``ix_tickets_branch_state_updated`` has no reader left; every change of a ticket had to
update it (``updated_at`` moves with each event).
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_tickets_branch_state_updated', table_name='tickets')


def downgrade():
    op.create_index('ix_tickets_branch_state_updated', 'tickets',
                    ['branch_id', 'state', 'updated_at', 'id'])
