"""Money given back after a hand-back: tickets.amount_refunded

Revision ID: 0011
Revises: 0010

A refund is a hash-chained ``refund`` record in the ticket's trail (amount, how it was given
back, why); the ticket keeps their sum beside the amount paid, for the reports. Nullable: no
ticket had one before.
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('tickets', sa.Column('amount_refunded', sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('amount_refunded')
