"""A queue number's SMS speak the language the kiosk was in: visits.language

Revision ID: 0010
Revises: 0009

A customer not on file who switched the kiosk to English gets the queue SMS in English (a
customer on file keeps their own language). Nullable: numbers taken before, and those taken at
the desk, speak the shop's language.
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('visits', sa.Column('language', sa.String(length=5), nullable=True))


def downgrade():
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_column('language')
