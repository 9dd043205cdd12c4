"""API tokens expire: api_tokens.expires_at

Revision ID: 0005
Revises: 0004

Nullable: tokens issued before this revision keep working until revoked (an admin sees them
without an expiry date on the user's page); new ones get API_TOKEN_DAYS (``flask api-token
--days``).
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
