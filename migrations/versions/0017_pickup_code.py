"""Who collects a device: tickets.pickup_code, pickup_tries and the texted one-time code

Revision ID: 0017
Revises: 0016

A ticket admitted from now on gets a short pickup code, printed on its intake receipt; a shop
that requires the collector confirmed at the hand-back asks for it, for a one-time code texted
to the owner, or for a manager's override with a reason. Tickets admitted before keep no code
(NULL): their receipts were printed without one, so a code made up now would be known to
nobody. Under the setting they are still confirmed, by the texted code or a manager.
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pickup_code', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('pickup_tries', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('pickup_otp_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pickup_otp_expires_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('pickup_otp_sent_at', sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('pickup_otp_sent_at')
        batch_op.drop_column('pickup_otp_expires_at')
        batch_op.drop_column('pickup_otp_hash')
        batch_op.drop_column('pickup_tries')
        batch_op.drop_column('pickup_code')
