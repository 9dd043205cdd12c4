"""An intake sent twice admits the device once: tickets.intake_key

Revision ID: 0009
Revises: 0008

The desk's intake form carries a key of its own (and an API client may send an
``Idempotency-Key``): a second intake with the same key answers with the ticket the first made
instead of admitting the device again. Nullable and unique: tickets admitted before, imported
ones and those sent without a key have none.
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('tickets', sa.Column('intake_key', sa.String(length=64), nullable=True))
    op.create_index('uq_tickets_intake_key', 'tickets', ['intake_key'], unique=True)


def downgrade():
    op.drop_index('uq_tickets_intake_key', table_name='tickets')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('intake_key')
