"""A transfer in one round trip on PostgreSQL (issue 17, `do_transfer`).

`ledger_transfer(...)` is the common case of `timebank.ledger.actions.do_transfer` (a member's gift or donation
that needs no refusal, no replay and no storage-cap overflow) as one statement, so that with the sealer in its own
process a transfer is a single autocommitted call instead of six round trips. In order it:

1. answers NULL, writing nothing, when the caller's key is already on a transaction (the Python path then
   replays it or refuses it as a reused key);
2. reads the head office's storage cap (a transfer to a member), NULL answer when the bank has no rules row;
3. locks, in one query and in key order (as `lock_set`), the payer's buckets and the receiver's, or the bank's
   donation pool for a donation to the pool;
4. answers NULL when the payer cannot pay (earned + reserve below the minutes) or the credit would take the
   receiver above the storage cap: the Python path then refuses, or sends the part over the cap to the pool;
5. else debits reserve first, then earned, never goods (`_pay_legs`), credits the receiver's reserve or the pool,
   and posts through `ledger_post` (migration 0013): balances, transaction, legs, audit entry, daily summary.

NULL always means "nothing written, take the Python path", whose rules (timebank/ledger/actions.py) stay the
only place a refusal or a replay is decided; this function only recognises the case where they all pass.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION ledger_transfer(
    p_bank bigint, p_from bigint, p_to bigint, p_minutes bigint, p_kind text, p_memo text, p_actor bigint,
    p_idem_scope text, p_key text, p_fp text, p_created timestamptz,
    p_audit_scope text, p_audit_action text, p_audit_data jsonb, p_day date, p_stripes integer
) RETURNS bigint AS $$
DECLARE
    v_cap bigint;
    v_reserve_id bigint; v_reserve bigint; v_earned_id bigint; v_earned bigint;
    v_credit_id bigint; v_held bigint := 0; v_from_reserve bigint;
    v_accounts bigint[] := '{}'; v_deltas bigint[] := '{}';
    v_tx bigint;
    r record;
BEGIN
    IF p_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM ledger_transaction WHERE idem_scope = p_idem_scope AND idempotency_key = p_key
    ) THEN
        RETURN NULL;
    END IF;
    IF p_to IS NOT NULL THEN
        SELECT storage_cap_hours::bigint * 60 INTO v_cap FROM orgs_rules WHERE head_office_id = p_bank;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    FOR r IN
        SELECT id, member_id, kind, balance_minutes FROM ledger_account
         WHERE member_id = p_from OR member_id = p_to
            OR (p_to IS NULL AND bank_id = p_bank AND member_id IS NULL AND kind = 'donation_pool')
         ORDER BY id FOR UPDATE
    LOOP
        IF r.member_id = p_from THEN
            IF r.kind = 'reserve' THEN
                v_reserve_id := r.id; v_reserve := r.balance_minutes;
            ELSIF r.kind = 'earned' THEN
                v_earned_id := r.id; v_earned := r.balance_minutes;
            END IF;
        ELSIF r.member_id IS NULL THEN
            v_credit_id := r.id;
        ELSE
            v_held := v_held + r.balance_minutes;
            IF r.kind = 'reserve' THEN
                v_credit_id := r.id;
            END IF;
        END IF;
    END LOOP;
    IF v_reserve_id IS NULL OR v_earned_id IS NULL OR v_credit_id IS NULL
       OR v_earned + v_reserve < p_minutes
       OR (v_cap IS NOT NULL AND v_held + p_minutes > v_cap) THEN
        RETURN NULL;
    END IF;
    v_from_reserve := LEAST(p_minutes, GREATEST(v_reserve, 0));
    IF v_from_reserve <> 0 THEN
        v_accounts := v_accounts || v_reserve_id; v_deltas := v_deltas || -v_from_reserve;
    END IF;
    IF p_minutes - v_from_reserve <> 0 THEN
        v_accounts := v_accounts || v_earned_id; v_deltas := v_deltas || -(p_minutes - v_from_reserve);
    END IF;
    v_accounts := v_accounts || v_credit_id; v_deltas := v_deltas || p_minutes;
    SELECT tx_id INTO v_tx FROM ledger_post(
        p_bank, p_kind, p_memo, p_minutes, p_actor, p_idem_scope, p_key, p_fp, NULL, p_created, v_accounts, v_deltas,
        p_audit_scope, p_audit_action, p_audit_data, p_day, p_stripes
    );
    RETURN v_tx;
END $$ LANGUAGE plpgsql;
"""

BACKWARD = (
    "DROP FUNCTION IF EXISTS ledger_transfer(bigint, bigint, bigint, bigint, text, text, bigint, text, text, text, "
    "timestamptz, text, text, jsonb, date, integer);"
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
    dependencies = [("ledger", "0018_account_bank_system")]

    operations = [migrations.RunPython(forward, backward)]
