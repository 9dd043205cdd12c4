"""A customer's link the shop replaced: retired_links (the old token's hash, when)

Revision ID: 0022
Revises: 0021

The desk can replace a ticket's customer link (a forwarded SMS, a lost phone, a receipt left
on a bus): the ticket gets a new token at once. The old link then answers "this link was
replaced" (410) rather than "not found": for that its token's SHA-256 is kept, not the token
and not the ticket it led to.
"""
from alembic import op
import sqlalchemy as sa

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'retired_links',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_retired_links')))


def downgrade():
    op.drop_table('retired_links')
