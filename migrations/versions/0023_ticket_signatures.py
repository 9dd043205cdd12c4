"""The customer's signature drawn on the counter's screen: ticket_signatures

Revision ID: 0023
Revises: 0022

One picture (PNG) per ticket and moment (the intake, the hand-back), beside the event it was
given with; that event's data holds its SHA-256, so the audit chain vouches for it.
"""
from alembic import op
import sqlalchemy as sa

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ticket_signatures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('moment', sa.String(length=20), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('image', sa.LargeBinary(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                                name=op.f('fk_ticket_signatures_ticket_id_tickets')),
        sa.ForeignKeyConstraint(['event_id'], ['ticket_events.id'],
                                name=op.f('fk_ticket_signatures_event_id_ticket_events')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_signatures')),
        sa.UniqueConstraint('ticket_id', 'moment',
                            name=op.f('uq_ticket_signatures_ticket_id_moment')),
    )
    op.create_index(op.f('ix_ticket_signatures_ticket_id'), 'ticket_signatures', ['ticket_id'])


def downgrade():
    op.drop_index(op.f('ix_ticket_signatures_ticket_id'), table_name='ticket_signatures')
    op.drop_table('ticket_signatures')
