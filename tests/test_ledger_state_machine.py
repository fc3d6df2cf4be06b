"""The ledger against a plain in-memory model, driven by Hypothesis (runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.conftest import new_id_number
from tests.ledger_checks import ledger_problems
from timebank.ledger import actions
from timebank.ledger.models import Account, Transaction
from timebank.lib.errors import Conflict
from timebank.members.actions import MemberInput, do_link_relative, do_register_member
from timebank.members.models import Member
from timebank.orgs.actions import do_create_org, do_update_rules
from timebank.orgs.models import Org, Rules, User

N_MEMBERS = 3
amounts = st.integers(min_value=1, max_value=600)
who = st.integers(min_value=0, max_value=N_MEMBERS - 1)
buckets = st.sampled_from(["earned", "goods", "reserve"])


class LedgerMachine(RuleBasedStateMachine):
    actor: User

    def __init__(self) -> None:
        super().__init__()
        n = Org.objects.count()
        self.bank = do_create_org(None, name=f"bank {n}", kind="head_office", parent=None)
        community = do_create_org(None, name="社区", kind="sub_branch", parent=self.bank)
        # This machine models the ledger's arithmetic; four eyes on large credits has its own tests
        # (tests/test_trust_07_four_eyes*.py), so approvals are off here and every adjustment posts.
        Rules.objects.filter(head_office=self.bank).update(approval_threshold_minutes=None)
        self.overdraft = 0
        self.members: list[Member] = []
        for i in range(N_MEMBERS):
            self.members.append(
                do_register_member(
                    None,
                    home_org=community,
                    data=MemberInput(name=f"会员{i}", id_number=new_id_number(dt.date(1950 + i, 1, 1))),
                    approved=True,
                )
            )
        # Everyone is everyone's relative, so any pair may transfer.
        for i in range(N_MEMBERS):
            for j in range(i + 1, N_MEMBERS):
                do_link_relative(None, self.members[i], self.members[j], "亲属")
        self.model: list[dict[str, int]] = [{"earned": 0, "goods": 0, "reserve": 0} for _ in range(N_MEMBERS)]
        self.pool = 0
        self.done: dict[str, tuple[int, dict[str, Any]]] = {}  # key -> (transaction id, call)
        self.counter = 0

    # -- helpers ---------------------------------------------------------------------------------
    def _key(self) -> str:
        self.counter += 1
        return f"b{self.bank.pk}-k{self.counter}"

    def _spendable(self, i: int) -> int:
        return self.model[i]["earned"] + self.model[i]["reserve"]

    def _pay(self, i: int, minutes: int) -> None:
        from_reserve = min(minutes, max(self.model[i]["reserve"], 0))
        self.model[i]["reserve"] -= from_reserve
        self.model[i]["earned"] -= minutes - from_reserve

    def _call(self, fn: Any, expect_ok: bool, **kwargs: Any) -> None:
        key = self._key()
        if expect_ok:
            tx, replayed = fn(self.actor, idempotency_key=key, **kwargs)
            assert not replayed
            self.done[key] = (tx.pk, {"fn": fn, **kwargs})
        else:
            before = Transaction.objects.count()
            with pytest.raises(Conflict):
                fn(self.actor, idempotency_key=key, **kwargs)
            assert Transaction.objects.count() == before

    # -- rules -----------------------------------------------------------------------------------
    @rule(i=who, minutes=st.integers(min_value=-600, max_value=600).filter(bool), bucket=buckets)
    def adjust(self, i: int, minutes: int, bucket: str) -> None:
        after = dict(self.model[i])
        after[bucket] += minutes
        ok = after["goods"] >= 0 and (
            minutes > 0 or bucket == "goods" or after["earned"] + after["reserve"] >= -self.overdraft
        )
        self._call(actions.do_adjustment, ok, member=self.members[i], minutes=minutes, bucket=bucket, reason="test")
        if ok:
            self.model[i] = after

    @rule(v=who, p=who, minutes=amounts, payer=st.sampled_from(["subsidy", "recipient", "pool"]))
    def deposit(self, v: int, p: int, minutes: int, payer: str) -> None:
        if payer == "recipient":
            if v == p:
                return  # nobody pays themselves for serving themselves (refused as invalid input)
            ok = self._spendable(p) - minutes >= -self.overdraft
        elif payer == "pool":
            ok = self.pool >= minutes
        else:
            ok = True
        self._call(
            actions.do_deposit,
            ok,
            volunteer=self.members[v],
            minutes=minutes,
            payer=payer,
            payer_member=self.members[p] if payer == "recipient" else None,
        )
        if ok:
            if payer == "recipient":
                self._pay(p, minutes)
            elif payer == "pool":
                self.pool -= minutes
            self.model[v]["earned"] += minutes

    @rule(i=who, minutes=amounts)
    def withdraw(self, i: int, minutes: int) -> None:
        ok = self._spendable(i) - minutes >= -self.overdraft
        self._call(actions.do_withdrawal, ok, member=self.members[i], minutes=minutes)
        if ok:
            self._pay(i, minutes)

    @rule(i=who, j=who, minutes=amounts, donate=st.booleans())
    def transfer(self, i: int, j: int, minutes: int, donate: bool) -> None:
        if i == j and not donate:
            return
        ok = self._spendable(i) - minutes >= 0
        self._call(
            actions.do_transfer,
            ok,
            from_member=self.members[i],
            to_member=None if donate else self.members[j],
            minutes=minutes,
            kind="donation" if donate else "relative",
        )
        if ok:
            self._pay(i, minutes)
            if donate:
                self.pool += minutes
            else:
                self.model[j]["reserve"] += minutes

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data(), same=st.booleans())
    def replay(self, data: st.DataObject, same: bool) -> None:
        key = data.draw(st.sampled_from(sorted(self.done)))
        tx_id, call = self.done[key]
        kwargs = {k: v for k, v in call.items() if k != "fn"}
        before = Transaction.objects.count()
        if same:
            tx, replayed = call["fn"](self.actor, idempotency_key=key, **kwargs)
            assert replayed and tx.pk == tx_id
        else:
            changed = dict(kwargs)
            if "minutes" in changed:
                changed["minutes"] = changed["minutes"] + 1 if changed["minutes"] != -1 else 1
            else:
                changed["reason"] = "other"
            with pytest.raises(Conflict):
                call["fn"](self.actor, idempotency_key=key, **changed)
        assert Transaction.objects.count() == before

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.done)))
        original = Transaction.objects.get(pk=self.done[key][0])
        legs = list(original.legs.select_related("account"))
        after = [dict(m) for m in self.model]
        pool = self.pool
        index = {m.pk: n for n, m in enumerate(self.members)}
        for leg in legs:
            if leg.account.member_id:
                after[index[leg.account.member_id]][leg.account.kind] -= leg.minutes
            elif leg.account.kind == "donation_pool":
                pool -= leg.minutes
        already = Transaction.objects.filter(reverses=original).exists()
        ok = (
            not already
            and pool >= 0
            and all(m["goods"] >= 0 and m["earned"] + m["reserve"] >= -self.overdraft for m in after)
        )
        before = Transaction.objects.count()
        if ok:
            actions.do_reversal(self.actor, original=original, reason="mistake")
            self.model, self.pool = after, pool
        else:
            with pytest.raises(Conflict):
                actions.do_reversal(self.actor, original=original, reason="mistake")
            assert Transaction.objects.count() == before

    @rule(overdraft=st.sampled_from([0, 60, 120]))
    def set_overdraft(self, overdraft: int) -> None:
        # Lowering the limit never breaks existing balances in the model, only future debits.
        if any(self._spendable(i) < -overdraft for i in range(N_MEMBERS)):
            return
        do_update_rules(None, Rules.objects.get(head_office=self.bank), {"overdraft_minutes": overdraft})
        self.overdraft = overdraft

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def matches_model_and_invariants(self) -> None:
        assert ledger_problems(self.bank.pk) == []
        for i, member in enumerate(self.members):
            actual = dict(Account.objects.filter(member=member).values_list("kind", "balance_minutes"))
            assert actual == self.model[i], (i, actual, self.model[i])
        pool = Account.objects.get(bank=self.bank, member__isnull=True, kind="donation_pool").balance_minutes
        assert pool == self.pool


@pytest.mark.django_db
def test_ledger_matches_model() -> None:
    LedgerMachine.actor = User.objects.create_user("ledger-tester", password="x-pass-word-1")
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
    # The machine really moved credits (a guard against a silently empty run).
    assert Transaction.objects.count() > 50
