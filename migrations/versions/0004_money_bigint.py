"""money columns as 64-bit integers (rials exceed 2^31 for a phone's price)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('pre_approved_amount', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)
        batch_op.alter_column('amount_paid', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)
    with op.batch_alter_table('cost_lines', schema=None) as batch_op:
        batch_op.alter_column('unit_price', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade():
    with op.batch_alter_table('cost_lines', schema=None) as batch_op:
        batch_op.alter_column('unit_price', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('amount_paid', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
        batch_op.alter_column('pre_approved_amount', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
