"""Rows are written unsealed and linked into their chain later by the sealer (issue 17).

The chain fields of a transaction and an audit entry may be NULL/empty until sealed, a partial index on the
unsealed rows is the sealer's queue, and PostgreSQL's immutability guard allows exactly one change of such a
row: the sealer filling seq, prev_hash and hash of a row that had none. Everything else stays refused.
"""

from django.conf import settings
from django.db import migrations, models


FORWARD = """
CREATE OR REPLACE FUNCTION chain_refuse_change_but_sealing() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.hash <> ''
       AND to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash' = to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% rows are immutable once written (only the sealer links an unsealed row): post a reversal instead',
        TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS ledger_transaction_immutable ON ledger_transaction;
CREATE TRIGGER ledger_transaction_immutable BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION chain_refuse_change_but_sealing();
DROP TRIGGER IF EXISTS audit_entry_immutable ON audit_auditentry;
CREATE TRIGGER audit_entry_immutable BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION chain_refuse_change_but_sealing();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS ledger_transaction_immutable ON ledger_transaction;
CREATE TRIGGER ledger_transaction_immutable BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS audit_entry_immutable ON audit_auditentry;
CREATE TRIGGER audit_entry_immutable BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP FUNCTION IF EXISTS chain_refuse_change_but_sealing();
"""


def _run(schema_editor, sql):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql)


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    _run(schema_editor, FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    _run(schema_editor, BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_unsealed_rows'),
        ('ledger', '0011_fill_daily_summary'),
        ('orgs', '0005_login_guard'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='transaction',
            name='hash',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AlterField(
            model_name='transaction',
            name='prev_hash',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AlterField(
            model_name='transaction',
            name='seq',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='transaction',
            index=models.Index(condition=models.Q(('seq__isnull', True)), fields=['bank', 'id'], name='transaction_unsealed'),
        ),
        migrations.RunPython(forward, backward),
    ]
