"""A webhook endpoint can be deleted: webhook_endpoints.deleted_at

Revision ID: 0021
Revises: 0020

The administrator deletes an endpoint from its page. Its row stays, switched off, its secret
wiped and the time of its deletion set, so that its deliveries (what was sent to it, what was
not) keep the endpoint they name; the deliveries still waiting are cancelled with the reason.
"""
from alembic import op
import sqlalchemy as sa

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
