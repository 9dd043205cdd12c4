"""The cash drawer counted at a branch's desk: till_counts; users.device_failed_logins

Revision ID: 0012
Revises: 0011

Each count keeps what was in the drawer, the float kept for change, and the cash the day's
hand-backs and refunds said it should hold at that moment, with who counted and when.
A user's wrong passwords typed in browsers the account logged in from before are counted apart
from a stranger's (the login lock).
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_failed_logins', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.create_table(
        'till_counts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('counted', sa.BigInteger(), nullable=False),
        sa.Column('float_amount', sa.BigInteger(), nullable=False),
        sa.Column('expected', sa.BigInteger(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('counted_by_id', sa.Integer(), nullable=True),
        sa.Column('counted_by_name', sa.String(length=120), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['branch_id'], ['branches.id']),
        sa.ForeignKeyConstraint(['counted_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('till_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_till_counts_branch_id'), ['branch_id'], unique=False)


def downgrade():
    with op.batch_alter_table('till_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_till_counts_branch_id'))
    op.drop_table('till_counts')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('device_failed_logins')
