"""Known brands in one spelling on the devices and stage rows already stored

Revision ID: 0008
Revises: 0007

Intake now stores a known brand in one spelling however it was typed ("samsung ", «سامسونگ»):
the rows written before keep theirs until this runs, and the reports' brand filter and the
warranty check (same brand and model) would not find them. Data only; nothing to undo.
"""
import sqlalchemy as sa
from alembic import op

from servicedesk.devices import brand_name

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    for table in ("devices", "ticket_stages"):
        typed = conn.execute(sa.text(
            f"SELECT DISTINCT brand FROM {table} WHERE brand IS NOT NULL")).scalars().all()
        for old in typed:
            new = brand_name(old)
            if new != old:
                conn.execute(sa.text(f"UPDATE {table} SET brand = :new WHERE brand = :old"),
                             {"new": new, "old": old})


def downgrade():
    pass  # the spellings typed are not kept; the one spelling reads the same
