"""The node side of bench/federation_crash.py: what runs inside one node (its DATABASE_URL, secrets file and
FEDERATION_NODE_ID in the environment, Django set up), each as its own process started by the harness.

    _federation_node.py setup --members N --peer NODE_ID URL PUBLIC_KEY   # a bank, funded members, the other node
    _federation_node.py sync-loop                                         # federation_sync over and over
    _federation_node.py inspect --barrier MINE OTHER                      # deliver the rest, verify, reconcile, dump

`setup` and `inspect` print one JSON line last; the harness reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "timebank.settings")

FUNDING = 5_000_000  # minutes per member: never short
LIMIT = 10_000_000  # the bilateral limit (MAX_MINUTES): never reached


def setup_django() -> None:
    import django

    django.setup()


def role_setup(members: int, peer_id: str, peer_url: str, peer_key: str) -> dict[str, Any]:
    """A bank, `members` members with logins and funded reserves, and the other node as a peer."""
    import datetime as dt

    from timebank.federation.actions import do_create_peer
    from timebank.ledger.actions import do_adjustment
    from timebank.members.actions import MemberInput, do_register_member
    from timebank.orgs.actions import do_create_org, do_issue_token
    from timebank.orgs.models import User

    tag = os.environ["FEDERATION_NODE_ID"][-1]
    root = User.objects.create_superuser(f"fc_root_{tag}", password=None)
    bank = do_create_org(root, name=f"压测时间银行{tag}", kind="head_office", parent=None)
    branch = do_create_org(root, name="压测街道", kind="branch", parent=bank)
    community = do_create_org(root, name="压测社区", kind="sub_branch", parent=branch)
    peer = do_create_peer(
        root, node_id=peer_id, name=f"节点{peer_id}", url=peer_url, public_key=peer_key, bank=bank, limit_minutes=LIMIT
    )
    people = []
    for i in range(members):
        member = do_register_member(
            None,
            home_org=community,
            data=MemberInput(
                name=f"会员{tag}{i}",
                roles=["volunteer"],
                phone="13800000000",
                birth_date=dt.date(1960, 1, 1),
                gender="female",
            ),
            login=(f"fc_{tag}_{i}", "crash-pass-1"),
            approved=True,
        )
        assert member.user is not None
        do_adjustment(None, member=member, minutes=FUNDING, bucket="reserve", reason="压测开户")
        people.append({"id": member.pk, "name": member.name, "token": do_issue_token(member.user)})
    return {"peer": peer.pk, "bank": bank.pk, "members": people}


def role_sync_loop() -> None:
    """`manage.py federation_sync` over and over (as cron or the task worker would), until killed."""
    from django.core.management import call_command

    while True:
        try:
            call_command("federation_sync")
        except Exception as exc:  # a peer's failure is per transfer; anything else: log it and go on
            print(f"sync loop: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        time.sleep(0.3)


def finish(mine: Path, other: Path) -> dict[str, Any]:
    """Deliver everything still pending (both servers are up), then wait until the other node has done the same."""
    from timebank.federation.actions import sync

    deadline = time.monotonic() + 300
    rounds = 0
    while True:
        rounds += 1
        result = sync()
        if result.pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    mine.touch()
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"rounds": rounds, "pending": result.pending}


def role_inspect(mine: Path, other: Path) -> dict[str, Any]:
    """This node's side once both outboxes are delivered: its transfers, the ledger transactions that carry them,
    its clearing balance, verify, and federation_reconcile for every day with transfers."""
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.utils import timezone

    from timebank.federation.models import FederatedTransfer, Outbox, Peer
    from timebank.ledger.models import Transaction

    finished = finish(mine, other)
    peer = Peer.objects.select_related("clearing_account").get()
    transfers = [
        {
            "id": str(t.transfer_id),
            "dir": t.direction,
            "state": t.state,
            "reason": t.reason,
            "key": t.idempotency_key,
            "minutes": t.minutes,
            "tx": t.transaction_id,
            "failed_attempts": t.outbox.attempts if t.direction == "out" else 0,
            "done_at": t.completed_at.timestamp() if t.completed_at else None,
            "refund": t.refund_id,
            "day": timezone.localdate(t.agreed_at).isoformat(),
        }
        for t in FederatedTransfer.objects.select_related("outbox")
    ]
    memos = Counter(Transaction.objects.filter(memo__startswith="跨节点").values_list("memo", flat=True))
    out = io.StringIO()
    try:
        call_command("verify", stdout=out, stderr=out)
        verified = True
    except (CommandError, SystemExit):
        verified = False
    reconciled: dict[str, str] = {}
    for day in sorted({str(t["day"]) for t in transfers}):
        text = io.StringIO()
        try:
            call_command("federation_reconcile", date=dt_date(day), stdout=text, stderr=text)
            reconciled[day] = "ok"
        except CommandError as exc:
            reconciled[day] = f"{exc}: {text.getvalue()[-1500:]}"
    return {
        "final_sync": finished,
        "transfers": transfers,
        "memos": dict(memos),
        "clearing": peer.clearing_account.balance_minutes,
        "undelivered": Outbox.objects.filter(delivered_at__isnull=True).count(),
        "verified": verified,
        "verify": out.getvalue().strip()[-2000:],
        "reconciled": reconciled,
    }


def dt_date(text: str) -> Any:
    import datetime as dt

    return dt.date.fromisoformat(text)


def run_role(args: argparse.Namespace) -> int:
    setup_django()
    if args.role == "sync-loop":
        role_sync_loop()
        return 0
    if args.role == "setup":
        result = role_setup(args.members, *args.peer)
    elif args.role == "inspect":
        result = role_inspect(Path(args.barrier[0]), Path(args.barrier[1]))
    else:
        raise SystemExit(f"unknown role {args.role}")
    print(json.dumps(result, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("role", choices=["setup", "sync-loop", "inspect"])
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--peer", nargs=3)
    parser.add_argument("--barrier", nargs=2)
    return run_role(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
