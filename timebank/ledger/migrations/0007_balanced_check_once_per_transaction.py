"""Check a transaction's balance once at commit, not once per leg.

The deferred trigger still fires for every inserted leg, but the first firing for a transaction remembers
(in a transaction-local setting) that the sum was checked, so a settlement batch of thousands of legs costs
one SUM instead of thousands.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger AS $$
DECLARE total bigint; n integer; flag text := 'timebank.checked_tx_' || NEW.transaction_id;
BEGIN
    IF current_setting(flag, true) = '1' THEN
        RETURN NULL;
    END IF;
    SELECT COALESCE(SUM(minutes), 0), COUNT(*) INTO total, n
      FROM ledger_leg WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 OR n < 2 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced (% legs, sum %)', NEW.transaction_id, n, total
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    PERFORM set_config(flag, '1', true);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

BACKWARD = """
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
    dependencies = [("ledger", "0006_alter_leg_account")]

    operations = [migrations.RunPython(forward, backward)]
