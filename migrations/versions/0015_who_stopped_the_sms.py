"""Who stopped a customer's SMS, on the customer: customers.opted_out_by

Revision ID: 0015
Revises: 0014

Whether the SMS were stopped by the customer (at the desk: "staff"; on their page: "link") or by
a STOP the number's owner replied (Twilio 21610: "stop", lifted when the desk corrects a
mistyped number) was read back from the audit log's last ``customer.sms`` row. The audit log is
a record; the rule reads this column. Filled from that last row for the customers whose SMS are
stopped now (None where no row says who: the demo's customers).
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('customers', sa.Column('opted_out_by', sa.String(length=8), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        how, stopped = "a.value_to ->> 'how'", "(a.value_to ->> 'sms') = 'false'"
        opted_out = "sms_opt_out"
    else:
        how, stopped = "json_extract(a.value_to, '$.how')", "json_extract(a.value_to, '$.sms') = 0"
        opted_out = "sms_opt_out = 1"
    # the last switch, when it stopped them (a last row that started them again says nothing)
    op.execute(
        f"UPDATE customers SET opted_out_by = (SELECT CASE WHEN {stopped} THEN {how} END "
        "FROM audit_log a WHERE a.action = 'customer.sms' AND a.object_type = 'customers' "
        "AND a.object_id = CAST(customers.id AS VARCHAR(64)) ORDER BY a.id DESC LIMIT 1) "
        f"WHERE {opted_out}")
    op.execute("UPDATE customers SET opted_out_by = NULL "
               "WHERE opted_out_by NOT IN ('staff', 'link', 'stop')")


def downgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('opted_out_by')
