"""The shop's own loaner phones, per branch: loaners; loans.loaner_id and how a loaner came back

Revision ID: 0016
Revises: 0015

Until now a loaner phone was typed as free text at each loan. A branch now keeps a list of its
own (a label the desk calls it by, model, IMEI or serial, notes); a loan may name one of them,
and a partial unique index keeps one phone out once at a time (free-text loans, whose
loaner_id is NULL, are not held by it). A loan taken back records the phone's condition then
(fine or damaged, with a note); a damaged phone is not lent until a manager marks it fine.
"""
from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'loaners',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=20), nullable=False),
        sa.Column('model', sa.String(length=120), nullable=False),
        sa.Column('serial', sa.String(length=40), nullable=True),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('condition', sa.String(length=10), nullable=False),
        sa.Column('condition_note', sa.Text(), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['branch_id'], ['branches.id'],
                                name=op.f('fk_loaners_branch_id_branches')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loaners')))
    with op.batch_alter_table('loaners', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loaners_branch_id'), ['branch_id'], unique=False)
        # a label once per branch among phones in use, whatever its case ("a1" is "A1")
        batch_op.create_index('uq_loaners_label_in_use', ['branch_id', sa.text('lower(label)')],
                              unique=True,
                              sqlite_where=sa.text('retired_at IS NULL'),
                              postgresql_where=sa.text('retired_at IS NULL'))
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('loaner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('return_condition', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('return_note', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_loans_loaner_id_loaners'), 'loaners',
                                    ['loaner_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_loans_loaner_id'), ['loaner_id'], unique=False)
        batch_op.create_index('uq_loans_loaner_out', ['loaner_id'], unique=True,
                              sqlite_where=sa.text('returned_at IS NULL'),
                              postgresql_where=sa.text('returned_at IS NULL'))


def downgrade():
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('uq_loans_loaner_out')
        batch_op.drop_index(batch_op.f('ix_loans_loaner_id'))
        batch_op.drop_constraint(batch_op.f('fk_loans_loaner_id_loaners'), type_='foreignkey')
        batch_op.drop_column('return_note')
        batch_op.drop_column('return_condition')
        batch_op.drop_column('loaner_id')
    with op.batch_alter_table('loaners', schema=None) as batch_op:
        batch_op.drop_index('uq_loaners_label_in_use')
        batch_op.drop_index(batch_op.f('ix_loaners_branch_id'))
    op.drop_table('loaners')
