"""PostgreSQL guards the ledger's invariants even against writes that bypass the ORM.

- a deferred constraint trigger refuses, at commit, any transaction whose legs do not sum to zero
  or that has fewer than two legs;
- postings and audit rows are immutable: UPDATE and DELETE are refused.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger AS $$
DECLARE total bigint; n integer;
BEGIN
    SELECT COALESCE(SUM(minutes), 0), COUNT(*) INTO total, n
      FROM ledger_leg WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 OR n < 2 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% legs, sum %)', NEW.transaction_id, n, total
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_leg_balanced
    AFTER INSERT ON ledger_leg DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: post a reversal instead', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_leg_immutable BEFORE UPDATE OR DELETE ON ledger_leg
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transaction_immutable BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_entry_immutable BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_entry_immutable ON audit_auditentry;
DROP TRIGGER IF EXISTS ledger_transaction_immutable ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_leg_immutable ON ledger_leg;
DROP FUNCTION IF EXISTS ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_leg_balanced ON ledger_leg;
DROP FUNCTION IF EXISTS ledger_check_balanced();
"""


def _run(schema_editor, sql):  # type: ignore[no-untyped-def]
    # A plain cursor: the SQL has '%' in RAISE formats, which must not be read as placeholders.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        _run(schema_editor, FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        _run(schema_editor, BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0002_initial"),
        ("audit", "0002_initial"),
    ]

    operations = [migrations.RunPython(forward, backward)]
