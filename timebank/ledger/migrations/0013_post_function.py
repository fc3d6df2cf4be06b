"""A posting in one round trip on PostgreSQL (issue 17).

`ledger_post(...)` takes the legs of one balanced transaction for accounts the caller's database transaction has
already locked (in key order), and in one call updates their balances, inserts the transaction unsealed and its
legs with each balance after, and, when asked, the audit entry; last, it counts the transaction in the daily
summary (the same upsert as timebank/ledger/summary.py, striped by the transaction's id). The deferred balance trigger and the
immutability guards stand behind it unchanged. `timebank/ledger/posting.py` is its only caller; SQLite keeps
the ORM path there.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION ledger_post(
    p_bank bigint, p_kind text, p_memo text, p_minutes bigint, p_actor bigint, p_idem_scope text, p_key text,
    p_fp text, p_reverses bigint, p_created timestamptz, p_accounts bigint[], p_deltas bigint[],
    p_audit_scope text, p_audit_action text, p_audit_data jsonb, p_day date, p_stripes integer
) RETURNS TABLE (tx_id bigint, audit_id bigint) AS $$
DECLARE v_tx bigint; v_audit bigint;
BEGIN
    INSERT INTO ledger_transaction (bank_id, seq, kind, memo, minutes, actor_id, idem_scope, idempotency_key,
                                    fingerprint, reverses_id, created_at, prev_hash, hash)
    VALUES (p_bank, NULL, p_kind, p_memo, p_minutes, p_actor, p_idem_scope, p_key, p_fp, p_reverses, p_created, '', '')
    RETURNING id INTO v_tx;
    WITH moved AS (
        UPDATE ledger_account AS a SET balance_minutes = a.balance_minutes + v.delta
          FROM unnest(p_accounts, p_deltas) AS v(id, delta)
         WHERE a.id = v.id
        RETURNING a.id, v.delta, a.balance_minutes
    )
    INSERT INTO ledger_leg (transaction_id, account_id, minutes, balance_after_minutes)
    SELECT v_tx, id, delta, balance_minutes FROM moved ORDER BY id;
    IF p_audit_action IS NOT NULL THEN
        INSERT INTO audit_auditentry (scope, seq, actor_id, action, object_type, object_id, data, created_at,
                                      prev_hash, hash)
        VALUES (p_audit_scope, NULL, p_actor, p_audit_action, 'transaction', v_tx::text, p_audit_data, p_created, '', '')
        RETURNING id INTO v_audit;
    END IF;
    INSERT INTO ledger_dailysummary (bank_id, day, kind, stripe, transactions, minutes)
    VALUES (p_bank, p_day, p_kind, v_tx % p_stripes, 1, p_minutes)
    ON CONFLICT (bank_id, day, kind, stripe) DO UPDATE
        SET transactions = ledger_dailysummary.transactions + 1,
            minutes = ledger_dailysummary.minutes + excluded.minutes;
    RETURN QUERY SELECT v_tx, v_audit;
END $$ LANGUAGE plpgsql;
"""

BACKWARD = (
    "DROP FUNCTION IF EXISTS ledger_post(bigint, text, text, bigint, bigint, text, text, text, bigint, timestamptz, "
    "bigint[], bigint[], text, text, jsonb, date, integer);"
)


def _run(schema_editor, sql):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql)


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    _run(schema_editor, FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    _run(schema_editor, BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0012_unsealed_rows")]

    operations = [migrations.RunPython(forward, backward)]
