"""Loaner devices lent while a ticket is open: loans

Revision ID: 0014
Revises: 0013

A shop lends the customer a cheap phone (a «گوشی امانی») while theirs is in repair and must
have it back before handing the repaired one over. Each loan is also a ``lend_loaner`` record
(and, when it comes back, a ``return_loaner`` record) in the ticket's hash-chained trail. A
partial unique index keeps one loaner out per ticket at a time.
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'loans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('description', sa.String(length=120), nullable=False),
        sa.Column('serial', sa.String(length=40), nullable=True),
        sa.Column('condition', sa.Text(), nullable=False),
        sa.Column('lent_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lent_by_id', sa.Integer(), nullable=True),
        sa.Column('lent_by_name', sa.String(length=120), nullable=False),
        sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('returned_by_id', sa.Integer(), nullable=True),
        sa.Column('returned_by_name', sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(['lent_by_id'], ['users.id']),
        sa.ForeignKeyConstraint(['returned_by_id'], ['users.id']),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id']),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index('uq_loans_one_out', ['ticket_id'], unique=True,
                              sqlite_where=sa.text('returned_at IS NULL'),
                              postgresql_where=sa.text('returned_at IS NULL'))


def downgrade():
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('uq_loans_one_out')
        batch_op.drop_index(batch_op.f('ix_loans_ticket_id'))
    op.drop_table('loans')
