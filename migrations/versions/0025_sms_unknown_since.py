"""An SMS whose last attempt's outcome is unknown keeps when that attempt began:
notifications.unknown_since

Revision ID: 0025
Revises: 0023

Before sending such a row again the delivery job asks Twilio whether a message with its text
went to its number since then (notifications/delivery.py); None for every row so far.
"""
from alembic import op
import sqlalchemy as sa

revision = '0025'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications') as batch:
        batch.add_column(sa.Column('unknown_since', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('notifications') as batch:
        batch.drop_column('unknown_since')
