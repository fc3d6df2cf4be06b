"""Issue 17: published checkpoints. `do_publish_checkpoint` stores the exact signed JSON, the public disclosure
pages list and serve it, and `verify` starts from the latest one whose signature verifies (`--full` walks
everything). Tampers are direct SQL, as a database writer without the signing key would do them."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from tests.conftest import World
from tests.test_tamper import bypassing_guards, raw
from timebank.audit.models import AuditEntry
from timebank.ledger import actions
from timebank.ledger.checkpoint import check_checkpoint, checkpoint_text, make_checkpoint, public_key_b64
from timebank.ledger.models import PublishedCheckpoint, Transaction
from timebank.ledger.tasks import publish_checkpoint
from timebank.ledger.verify import verify


@pytest.fixture
def ledger(world: World) -> World:
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    actions.do_adjustment(None, member=volunteer, minutes=300, bucket="earned", reason="opening")
    actions.do_adjustment(None, member=neighbour, minutes=200, bucket="earned", reason="opening")
    actions.do_adjustment(None, member=volunteer, minutes=100, bucket="goods", reason="opening")
    actions.do_transfer(None, from_member=volunteer, to_member=None, minutes=30, kind="donation")
    report = verify()
    assert report.ok, report.problems
    return world


def later(world: World, n: int = 3) -> list[Transaction]:
    """n postings after a checkpoint."""
    volunteer = world.members["volunteer"]
    posted = []
    for i in range(n):
        tx, _replayed = actions.do_adjustment(None, member=volunteer, minutes=10 + i, bucket="earned", reason=f"x{i}")
        assert isinstance(tx, Transaction)
        posted.append(tx)
    return posted


def run_verify(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("verify", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def forged(text: str, **changes: object) -> str:
    data = json.loads(text)
    data.update(changes)
    return checkpoint_text(data)


def test_a_published_checkpoint_is_listed_and_downloads_byte_identical(ledger: World, tmp_path: Path) -> None:
    row = actions.do_publish_checkpoint(None)
    data = json.loads(row.text)
    assert check_checkpoint(data) == []
    entry = AuditEntry.objects.get(action="checkpoint.publish")
    assert entry.scope == "global" and entry.object_id == str(row.pk) and entry.data["chains"] == len(data["chains"])
    client = Client()  # nobody logged in
    index = client.get("/disclosure/")
    assert index.status_code == 200 and "/disclosure/checkpoints/" in index.content.decode()
    page = client.get("/disclosure/checkpoints/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "账本检查点" in html and public_key_b64() in html and "python manage.py verify --checkpoint FILE" in html
    assert f"/disclosure/checkpoints/{row.pk}.json" in html
    tip = next(t for t in data["chains"] if t["bank"] == ledger.bank.pk and t["chain"] == "ledger")
    assert ledger.bank.name in html and tip["hash"][:16] in html and tip["hash"] not in html  # shortened
    # No personal data: no member's name or phone on the page or in the file.
    for member in ledger.members.values():
        assert member.name not in html and member.name not in row.text
    download = client.get(f"/disclosure/checkpoints/{row.pk}.json")
    assert download.status_code == 200
    assert download["Content-Type"].startswith("application/json")
    assert download["Content-Disposition"].startswith("attachment;")
    assert download.content == row.text.encode("utf-8")
    out = tmp_path / "downloaded.json"
    out.write_bytes(download.content)
    later(ledger, 1)
    stdout, _err = run_verify("--checkpoint", str(out))
    assert "extend the checkpoint" in stdout


def test_the_checkpoint_pages_refuse_bad_ids_and_writes(ledger: World) -> None:
    client = Client()
    assert client.get("/disclosure/checkpoints/999999.json").status_code == 404
    assert client.get("/disclosure/checkpoints/0.json").status_code == 404
    assert client.get("/disclosure/checkpoints/-1.json").status_code == 404
    assert client.get("/disclosure/checkpoints/abc.json").status_code == 404
    assert client.get(f"/disclosure/checkpoints/{'9' * 30}.json").status_code == 404
    assert client.post("/disclosure/checkpoints/").status_code in (403, 405)
    assert PublishedCheckpoint.objects.count() == 0
    page = client.get("/disclosure/checkpoints/")
    assert page.status_code == 200 and "还没有公开的检查点" in page.content.decode()


def test_checkpoint_command_publishes_and_still_writes_the_file(ledger: World, tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    call_command("checkpoint", out=str(plain))
    assert PublishedCheckpoint.objects.count() == 0 and check_checkpoint(json.loads(plain.read_text())) == []
    published = tmp_path / "published.json"
    call_command("checkpoint", "--publish", out=str(published))
    row = PublishedCheckpoint.objects.get()
    assert published.read_text(encoding="utf-8") == row.text
    result = publish_checkpoint.enqueue()  # the task (immediate backend in tests)
    assert result.return_value is not None and result.return_value["checkpoint"] != row.pk
    assert PublishedCheckpoint.objects.count() == 2
    with pytest.raises(CommandError):
        call_command("checkpoint", every=-5)
    with pytest.raises(CommandError):
        call_command("checkpoint", every=5, times=0)
    assert PublishedCheckpoint.objects.count() == 2
    # The scheduled loop publishes, then waits its minutes for the next one; told to stop after one, it does not wait.
    loop_out = tmp_path / "latest.json"
    call_command("checkpoint", "--every", "1", "--times", "1", out=str(loop_out))
    newest = PublishedCheckpoint.objects.order_by("-id").first()
    assert PublishedCheckpoint.objects.count() == 3 and newest is not None
    assert loop_out.read_text(encoding="utf-8") == newest.text


def test_default_verify_walks_only_the_rows_after_the_latest_checkpoint(ledger: World) -> None:
    total = Transaction.objects.count()
    assert verify(incremental=True).mode == "full"  # nothing published yet: everything is walked
    stdout, _err = run_verify()
    assert f"ok: {total} transactions walked" in stdout and "mode: full" in stdout
    row = actions.do_publish_checkpoint(None)
    report = verify(incremental=True)
    assert report.ok and report.mode == "incremental" and report.transactions == 0 and report.base is not None
    assert report.base.row.pk == row.pk
    later(ledger, 3)
    report = verify(incremental=True)
    assert report.ok, report.problems
    assert report.transactions == 3
    stdout, _err = run_verify()
    assert f"mode: incremental, from published checkpoint {row.pk}" in stdout
    assert "ok: 3 transactions walked after the checkpoint" in stdout
    stdout, _err = run_verify("--full")
    assert "mode: full" in stdout and f"ok: {total + 3} transactions walked" in stdout
    assert verify().transactions == total + 3  # verify() without the flag stays full


def test_a_tamper_before_the_checkpoint_is_caught_by_full_only(ledger: World) -> None:
    """Said honestly: the incremental walk does not re-hash rows before its checkpoint."""
    first = Transaction.objects.filter(bank=ledger.bank).order_by("seq").first()
    assert first is not None
    actions.do_publish_checkpoint(None)
    later(ledger, 2)
    with bypassing_guards("ledger_transaction"):
        raw("UPDATE ledger_transaction SET memo = 'rewritten' WHERE id = %s", [first.pk])
    assert verify(incremental=True).ok  # not seen from the checkpoint on
    full = verify(incremental=False)
    assert any(f"transaction {first.pk} " in p for p in full.problems), full.problems
    with pytest.raises(CommandError):
        run_verify("--full")


def test_a_tamper_of_the_checkpoints_own_row_is_caught_incrementally(ledger: World) -> None:
    row = actions.do_publish_checkpoint(None)
    tip = next(t for t in json.loads(row.text)["chains"] if t["bank"] == ledger.bank.pk and t["chain"] == "ledger")
    tx = Transaction.objects.get(bank=ledger.bank, seq=tip["seq"])
    with bypassing_guards("ledger_transaction"):
        raw("UPDATE ledger_transaction SET memo = 'rewritten' WHERE id = %s", [tx.pk])
    report = verify(incremental=True)
    assert report.mode == "incremental"
    assert any(f"transaction {tx.pk} " in p and "checkpoint's own" in p for p in report.problems), report.problems
    with pytest.raises(CommandError):
        run_verify()


def test_rewinding_past_the_checkpoint_falls_back_to_the_full_walk(ledger: World) -> None:
    row = actions.do_publish_checkpoint(None)
    tip = next(t for t in json.loads(row.text)["chains"] if t["bank"] == ledger.bank.pk and t["chain"] == "ledger")
    with bypassing_guards("ledger_transaction"):
        raw(
            "UPDATE ledger_transaction SET hash = %s WHERE bank_id = %s AND seq = %s",
            ["f" * 64, ledger.bank.pk, tip["seq"]],
        )
    report = verify(incremental=True)
    assert report.mode == "full" and "no longer extends" in report.why_full
    assert any("history rewritten" in p for p in report.problems), report.problems


def test_a_tamper_after_the_checkpoint_is_caught_incrementally(ledger: World) -> None:
    actions.do_publish_checkpoint(None)
    a, _b = later(ledger, 2)
    with bypassing_guards("ledger_transaction"):
        raw("UPDATE ledger_transaction SET memo = 'rewritten' WHERE id = %s", [a.pk])
    report = verify(incremental=True)
    assert report.mode == "incremental"
    assert any(f"transaction {a.pk} " in p for p in report.problems), report.problems
    with pytest.raises(CommandError):
        run_verify()


def test_a_balance_edited_after_the_checkpoint_is_caught_incrementally(ledger: World) -> None:
    actions.do_publish_checkpoint(None)
    (tx,) = later(ledger, 1)
    leg = tx.legs.get(account__member__isnull=False)
    with bypassing_guards("ledger_leg"), bypassing_guards("ledger_account"):
        raw(
            "UPDATE ledger_leg SET minutes = minutes + 500, balance_after_minutes = balance_after_minutes + 500 WHERE id = %s",
            [leg.pk],
        )
        raw("UPDATE ledger_account SET balance_minutes = balance_minutes + 500 WHERE id = %s", [leg.account_id])
    report = verify(incremental=True)
    assert report.mode == "incremental"
    assert any(f"transaction {tx.pk} has 2 legs summing to 500" in p for p in report.problems), report.problems
    assert any(f"transaction {tx.pk} " in p and "altered" in p for p in report.problems), report.problems


def test_an_account_balance_edited_without_new_legs_is_caught_incrementally(ledger: World) -> None:
    actions.do_publish_checkpoint(None)
    account = ledger.members["neighbour"].accounts.get(kind="earned")
    with bypassing_guards("ledger_account"):
        raw("UPDATE ledger_account SET balance_minutes = balance_minutes + 999 WHERE id = %s", [account.pk])
    report = verify(incremental=True)
    assert any(f"account {account.pk} " in p and "last leg" in p for p in report.problems), report.problems


def test_a_forged_checkpoint_row_is_ignored_by_verify_and_the_pages(ledger: World) -> None:
    real = actions.do_publish_checkpoint(None)
    (tx,) = later(ledger, 1)
    with bypassing_guards("ledger_transaction"):
        raw("UPDATE ledger_transaction SET memo = 'rewritten' WHERE id = %s", [tx.pk])
    # The writer claims a newer checkpoint whose ledger tip is the rewritten row, reusing the old signature.
    data = json.loads(real.text)
    for t in data["chains"]:
        if t["bank"] == ledger.bank.pk and t["chain"] == "ledger":
            t["seq"], t["hash"] = tx.seq, tx.hash
    made_at = "2099-01-01T00:00:00.000000+00:00"
    data["made_at"] = made_at
    copied = PublishedCheckpoint.objects.create(text=checkpoint_text(data), made_at=made_at)
    # And one signed with a key of their own, and one that is not JSON at all.
    key = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
    with override_settings(CHECKPOINT_SIGNING_KEY=key.decode()):
        foreign = checkpoint_text(make_checkpoint())
    own_key = PublishedCheckpoint.objects.create(text=foreign, made_at=made_at)
    junk = PublishedCheckpoint.objects.create(text="[not a checkpoint", made_at=made_at)
    report = verify(incremental=True)
    assert report.mode == "incremental" and report.base is not None and report.base.row.pk == real.pk
    assert any(f"transaction {tx.pk} " in p for p in report.problems), report.problems
    client = Client()
    html = client.get("/disclosure/checkpoints/").content.decode()
    assert f"/disclosure/checkpoints/{real.pk}.json" in html
    for bad in (copied, own_key, junk):
        assert f"/disclosure/checkpoints/{bad.pk}.json" not in html
        assert client.get(f"/disclosure/checkpoints/{bad.pk}.json").status_code == 404
    assert "另有 3 条记录的签名无效" in html


def test_only_forged_rows_mean_a_full_walk(ledger: World) -> None:
    PublishedCheckpoint.objects.create(
        text=forged(checkpoint_text(make_checkpoint()), signature="AAAA"), made_at="2099-01-01T00:00Z"
    )
    report = verify(incremental=True)
    assert report.ok and report.mode == "full" and "no published checkpoint" in report.why_full
    assert report.transactions == Transaction.objects.count()
