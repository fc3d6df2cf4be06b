"""Issue 17, "a chain that a database writer cannot rewrite": each tamper that `verify` used to answer "ok"
to is now caught. Every tamper is direct SQL through `connection.cursor()`, as someone who can write the
database (but does not hold the chain key kept outside it) would do it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from tests.conftest import World
from tests.test_orders import items, run_loop  # noqa: F401 - `items` is a fixture
from tests.test_tamper import bypassing_guards, raw
from timebank.audit.models import AuditEntry, ChainHead
from timebank.catalogue.models import ServiceItem
from timebank.ledger import actions
from timebank.ledger.checkpoint import check_checkpoint, make_checkpoint
from timebank.ledger.models import SUMMARY_STRIPES, Account, Leg, Transaction
from timebank.ledger.posting import transaction_payload
from timebank.ledger.summary import day_of
from timebank.ledger.verify import verify
from timebank.lib.hashchain import GENESIS, head_seal, link
from timebank.members.actions import do_view_id_number
from timebank.orgs.actions import do_update_rules
from timebank.orgs.models import Rules

GUESSED_KEY = "what a database writer might try"


@pytest.fixture
def ledger(world: World) -> World:
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    actions.do_adjustment(None, member=volunteer, minutes=300, bucket="earned", reason="opening")
    actions.do_adjustment(None, member=neighbour, minutes=200, bucket="earned", reason="opening")
    actions.do_adjustment(None, member=volunteer, minutes=100, bucket="goods", reason="opening")
    actions.do_adjustment(None, member=volunteer, minutes=50, bucket="reserve", reason="opening")
    actions.do_transfer(None, from_member=volunteer, to_member=None, minutes=30, kind="donation")
    # A legitimate change of the rules: verify follows it through the audit chain.
    do_update_rules(None, Rules.objects.get(head_office=world.bank), {"overdraft_minutes": 60})
    report = verify()
    assert report.ok, report.problems
    return world


def problems() -> list[str]:
    report = verify()
    assert not report.ok
    with pytest.raises(CommandError):
        call_command("verify")
    return report.problems


def account(member_id: int, kind: str) -> Account:
    return Account.objects.get(member_id=member_id, kind=kind)


def test_swapping_the_member_of_two_accounts_is_caught(ledger: World) -> None:
    volunteer, neighbour = ledger.members["volunteer"].pk, ledger.members["neighbour"].pk
    a, b = account(volunteer, "earned"), account(neighbour, "earned")
    # Three statements, as the (member, kind) unique key wants; balances still equal their legs.
    raw("UPDATE ledger_account SET member_id = NULL WHERE id = %s", [a.pk])
    raw("UPDATE ledger_account SET member_id = %s WHERE id = %s", [volunteer, b.pk])
    raw("UPDATE ledger_account SET member_id = %s WHERE id = %s", [neighbour, a.pk])
    found = problems()
    touched = set(Leg.objects.filter(account__in=[a, b]).values_list("transaction_id", flat=True))
    assert touched and all(any(f"transaction {t} " in p and "owner" in p for p in found) for t in touched), found


def test_swapping_a_members_goods_and_reserve_is_caught(ledger: World) -> None:
    volunteer = ledger.members["volunteer"].pk
    goods, reserve = account(volunteer, "goods"), account(volunteer, "reserve")
    raw("UPDATE ledger_account SET kind = 'swap' WHERE id = %s", [goods.pk])
    raw("UPDATE ledger_account SET kind = 'goods' WHERE id = %s", [reserve.pk])
    raw("UPDATE ledger_account SET kind = 'reserve' WHERE id = %s", [goods.pk])
    found = problems()
    tx_ids = set(Leg.objects.filter(account__in=[goods, reserve]).values_list("transaction_id", flat=True))
    assert all(any(f"transaction {t} " in p for p in found) for t in tx_ids), found


def test_raising_the_overdraft_in_the_rules_is_caught(ledger: World) -> None:
    raw("UPDATE orgs_rules SET overdraft_minutes = 6000 WHERE head_office_id = %s", [ledger.bank.pk])
    found = problems()
    assert any("overdraft_minutes is 6000" in p and "leave it at 60" in p for p in found), found


def test_raising_the_multipliers_in_the_rules_is_caught(ledger: World) -> None:
    forged = json.dumps({"ordinary": 1, "technical": 5, "professional": 9})
    cast = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    raw(f"UPDATE orgs_rules SET multipliers = {cast} WHERE head_office_id = %s", [forged, ledger.bank.pk])
    found = problems()
    assert any("rule multipliers" in p for p in found), found


def test_changing_an_orders_credited_minutes_is_caught(ledger: World, items: dict[str, ServiceItem]) -> None:  # noqa: F811
    actions.do_adjustment(None, member=ledger.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    order = run_loop(ledger, items["cleaning"], 60)
    assert verify().ok
    raw("UPDATE orders_order SET credited_minutes = credited_minutes + 600 WHERE id = %s", [order["id"]])
    found = problems()
    assert any(f"order {order['id']} says 660 minutes were credited" in p and "moved 60" in p for p in found), found


def test_deleting_the_audit_tail_and_rewinding_the_head_is_caught(ledger: World) -> None:
    scope = f"bank:{ledger.bank.pk}"
    keep = ChainHead.objects.get(scope=scope).audit_seq
    kept_hash = AuditEntry.objects.get(scope=scope, seq=keep).hash
    do_view_id_number(ledger.users["staff"], ledger.members["recipient"])
    assert AuditEntry.objects.filter(scope=scope, seq__gt=keep, action="member.view_id_number").exists()
    with bypassing_guards("audit_auditentry"):
        raw("DELETE FROM audit_auditentry WHERE scope = %s AND seq > %s", [scope, keep])
    raw("UPDATE audit_chainhead SET audit_seq = %s, audit_hash = %s WHERE scope = %s", [keep, kept_hash, scope])
    found = problems()
    assert any(f"{scope}: the chain head was changed without the chain key" in p for p in found), found


def rehash_ledger_from(bank_id: int, seq: int | None, key: str) -> None:
    """What a writer does after editing an old transaction: relink it and everything after it, and the head."""
    assert seq is not None  # a sealed transaction's
    with override_settings(CHAIN_KEY=key):
        prev = Transaction.objects.get(bank_id=bank_id, seq=seq - 1).hash if seq > 1 else GENESIS
        later = Transaction.objects.filter(bank_id=bank_id, seq__gte=seq).order_by("seq")
        with bypassing_guards("ledger_transaction"):
            for tx in later.prefetch_related("legs__account"):
                new = link(prev, transaction_payload(tx, tx.legs.all()))
                raw("UPDATE ledger_transaction SET prev_hash = %s, hash = %s WHERE id = %s", [prev, new, tx.pk])
                prev = new
        head = ChainHead.objects.get(scope=f"bank:{bank_id}")
        seal = head_seal(head.scope, head.ledger_seq, prev, head.audit_seq, head.audit_hash)
        raw("UPDATE audit_chainhead SET ledger_hash = %s, seal = %s WHERE id = %s", [prev, seal, head.pk])


def move_minutes_inside(tx: Transaction, minutes: int) -> None:
    """Add `minutes` to the credit leg and take them from the debit leg of `tx`, then fix every later
    balance_after and the balances, so everything but the chain adds up."""
    legs = list(tx.legs.order_by("minutes"))
    debit, credit = legs[0], legs[-1]
    with bypassing_guards("ledger_leg"):
        for leg, delta in ((debit, -minutes), (credit, minutes)):
            raw("UPDATE ledger_leg SET minutes = minutes + %s WHERE id = %s", [delta, leg.pk])
            raw(
                "UPDATE ledger_leg SET balance_after_minutes = balance_after_minutes + %s "
                "WHERE account_id = %s AND id >= %s",
                [delta, leg.account_id, leg.pk],
            )
            raw(
                "UPDATE ledger_account SET balance_minutes = balance_minutes + %s WHERE id = %s",
                [delta, leg.account_id],
            )
    with bypassing_guards("ledger_transaction"):
        raw("UPDATE ledger_transaction SET minutes = minutes + %s WHERE id = %s", [minutes, tx.pk])
    # A thorough forger also fixes the daily summary that verify recounts (ledger/summary.py).
    raw(
        "UPDATE ledger_dailysummary SET minutes = minutes + %s WHERE bank_id = %s AND day = %s AND kind = %s "
        "AND stripe = %s",
        [minutes, tx.bank_id, day_of(tx.created_at), tx.kind, tx.pk % SUMMARY_STRIPES],
    )


def test_moving_minutes_inside_an_old_transaction_and_rehashing_is_caught(ledger: World) -> None:
    bank_id = ledger.bank.pk
    old = Transaction.objects.filter(bank_id=bank_id).order_by("seq").first()
    assert old is not None and Transaction.objects.filter(bank_id=bank_id, seq__gt=old.seq).count() >= 3
    move_minutes_inside(old, 5000)
    rehash_ledger_from(bank_id, old.seq, GUESSED_KEY)
    found = problems()
    assert any(f"transaction {old.pk} (seq {old.seq})" in p and "chain key" in p for p in found), found
    # The rewrite is otherwise complete: only the key stands between it and "ok".
    assert all("without the chain key" in p for p in found), found
    rehash_ledger_from(bank_id, old.seq, key=_real_key())
    assert verify().ok


def _real_key() -> str:
    from django.conf import settings

    return str(settings.CHAIN_KEY)


def write_checkpoint(tmp_path: Path) -> Path:
    out = tmp_path / "checkpoint.json"
    call_command("checkpoint", out=str(out))
    return out


def test_checkpoint_of_an_untouched_database_verifies(ledger: World, tmp_path: Path) -> None:
    out = write_checkpoint(tmp_path)
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    chains = {(c["bank"], c["chain"]) for c in data["chains"]}
    assert {(ledger.bank.pk, "ledger"), (ledger.bank.pk, "audit"), (ledger.other_bank.pk, "audit")} <= chains
    # The database moves on after the checkpoint: it still extends it.
    actions.do_adjustment(None, member=ledger.members["volunteer"], minutes=10, bucket="earned", reason="later")
    call_command("verify", checkpoint=str(out))


def test_rewinding_the_tail_fails_verify_with_the_checkpoint(ledger: World, tmp_path: Path) -> None:
    """Even someone holding the chain key (so the head's seal is right) cannot take back history that a
    checkpoint kept elsewhere has seen."""
    scope = f"bank:{ledger.bank.pk}"
    keep = ChainHead.objects.get(scope=scope).audit_seq
    kept_hash = AuditEntry.objects.get(scope=scope, seq=keep).hash
    do_view_id_number(ledger.users["staff"], ledger.members["recipient"])
    out = write_checkpoint(tmp_path)
    with bypassing_guards("audit_auditentry"):
        raw("DELETE FROM audit_auditentry WHERE scope = %s AND seq > %s", [scope, keep])
    head = ChainHead.objects.get(scope=scope)
    seal = head_seal(scope, head.ledger_seq, head.ledger_hash, keep, kept_hash)
    raw(
        "UPDATE audit_chainhead SET audit_seq = %s, audit_hash = %s, seal = %s WHERE scope = %s",
        [keep, kept_hash, seal, scope],
    )
    assert verify().ok  # nothing in the database alone shows it
    with pytest.raises(CommandError):
        call_command("verify", checkpoint=str(out))
    found = check_checkpoint(json.loads(out.read_text(encoding="utf-8")))
    assert any(f"audit {scope} had seq {keep + 1}" in p and "rewound" in p for p in found), found


def test_rewriting_history_fails_verify_with_the_checkpoint(ledger: World) -> None:
    data = make_checkpoint()
    old = Transaction.objects.filter(bank_id=ledger.bank.pk).order_by("seq").first()
    assert old is not None
    move_minutes_inside(old, 5000)
    rehash_ledger_from(ledger.bank.pk, old.seq, key=_real_key())
    assert verify().ok
    found = verify(checkpoint=data).problems
    assert any(f"ledger bank:{ledger.bank.pk} seq" in p and "rewritten" in p for p in found), found


def test_a_forged_or_edited_checkpoint_is_refused(ledger: World) -> None:
    data = make_checkpoint()
    data["chains"][0]["seq"] += 1
    assert any("signature does not verify" in p for p in check_checkpoint(data))
    with override_settings(CHECKPOINT_SIGNING_KEY="A" * 43 + "="):  # another key signs a file of its own
        foreign = make_checkpoint()
    assert any("signature does not verify" in p for p in check_checkpoint(foreign))
    assert check_checkpoint(make_checkpoint()) == []


def make_legacy() -> None:
    """Turn the chains back into what a database written before the key looked like: unkeyed SHA-256
    links, legs without owners, heads without a seal."""
    from timebank.audit.chain import audit_payload
    from timebank.ledger.reseal import _legacy_tx_payload
    from timebank.lib.hashchain import legacy_link

    with bypassing_guards("ledger_transaction"), bypassing_guards("audit_auditentry"):
        for head in ChainHead.objects.all():
            prev = GENESIS
            if head.scope.startswith("bank:"):
                txs = Transaction.objects.filter(bank_id=int(head.scope[5:])).order_by("seq").prefetch_related("legs")
                for tx in txs:
                    new = legacy_link(prev, _legacy_tx_payload(tx, list(tx.legs.all())))
                    raw("UPDATE ledger_transaction SET prev_hash = %s, hash = %s WHERE id = %s", [prev, new, tx.pk])
                    prev = new
            ledger_tip, prev = prev, GENESIS
            for entry in AuditEntry.objects.filter(scope=head.scope).order_by("seq"):
                new = legacy_link(prev, audit_payload(entry))
                raw("UPDATE audit_auditentry SET prev_hash = %s, hash = %s WHERE id = %s", [prev, new, entry.pk])
                prev = new
            raw(
                "UPDATE audit_chainhead SET ledger_hash = %s, audit_hash = %s, seal = '' WHERE id = %s",
                [ledger_tip, prev, head.pk],
            )


def test_chains_written_before_the_key_are_resealed_once(ledger: World) -> None:
    make_legacy()
    assert not verify().ok  # unkeyed links are not accepted as they are: no downgrade
    call_command("reseal_chains")
    report = verify()
    assert report.ok, report.problems
    call_command("reseal_chains")  # again: already keyed, nothing changes
    assert verify().ok


def test_a_legacy_chain_that_fails_the_old_check_is_not_resealed(ledger: World) -> None:
    make_legacy()
    tx = Transaction.objects.filter(bank_id=ledger.bank.pk).order_by("seq").first()
    assert tx is not None
    with bypassing_guards("ledger_transaction"):
        raw("UPDATE ledger_transaction SET memo = 'forged' WHERE id = %s", [tx.pk])
    with pytest.raises(CommandError):
        call_command("reseal_chains")
    assert Transaction.objects.get(pk=tx.pk).hash == tx.hash  # untouched, still failing
    assert not verify().ok


def test_removing_a_banks_chain_head_is_caught(ledger: World) -> None:
    raw("DELETE FROM audit_chainhead WHERE scope = %s", [f"bank:{ledger.other_bank.pk}"])
    found = problems()
    assert any(f"bank {ledger.other_bank.pk}: no chain head" in p for p in found), found
    assert any(f"audit bank:{ledger.other_bank.pk}: entries but no chain head" in p for p in found), found
