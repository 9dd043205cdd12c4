"""A password another person set is changed at its first use: users.password_change_due

Revision ID: 0020
Revises: 0019

An administrator or a manager who creates an account or resets its password knows the password
they hand over (it was shown on their screen, perhaps read out at the counter). The account's
staff pages ask its owner for one of their own first. Accounts already there are left as they
are: nobody can tell now who set their passwords.
"""
from alembic import op
import sqlalchemy as sa

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_change_due', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_change_due')
