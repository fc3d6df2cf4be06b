"""Evaluation's loose ends: the volunteer is told of penalties and awards; the credit correction has a page;
a refusal from the penalty action is a 4xx answer, never a 500."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from tests.conftest import World, error_code, web_client
from tests.evaluation_helpers import credit
from timebank.evaluation import actions
from timebank.evaluation.models import AwardKind, Penalty
from timebank.ledger.models import Account, Transaction
from timebank.notify.models import Notification


def _outbox(member_id: int) -> list[Notification]:
    return list(Notification.objects.filter(member_id=member_id, channel="outbox").order_by("pk"))


def test_the_volunteer_is_told_of_a_penalty_and_of_its_lifting(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    volunteer = world.members["volunteer"]
    admin = world.users["branch_admin"]
    with django_capture_on_commit_callbacks(execute=True):
        penalty = actions.do_impose_penalty(admin, volunteer, kind="suspension", reason="两次未到场，电话不接")
    (imposed,) = _outbox(volunteer.pk)
    assert imposed.template == "penalty.imposed" and "暂停派单" in imposed.body
    assert "电话不接" not in imposed.body  # the reason stays in the app, not in a message others may read
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_lift_penalty(admin, penalty, reason="已整改")
    assert [n.template for n in _outbox(volunteer.pk)] == ["penalty.imposed", "penalty.lifted"]
    assert "可以重新接单" in _outbox(volunteer.pk)[-1].body


def test_a_refused_penalty_sends_nothing(world: World, django_capture_on_commit_callbacks: Any) -> None:
    open_complaint = actions.do_file_complaint(None, org=world.community, text="x")
    with django_capture_on_commit_callbacks(execute=True):
        resp = world.api("branch_admin").post(
            "/api/v1/penalties",
            {
                "member_id": world.members["volunteer"].pk,
                "kind": "warning",
                "reason": "x",
                "complaint_id": open_complaint.pk,
            },
            HTTP_IDEMPOTENCY_KEY="pen-1",
        )
    assert resp.status_code == 409 and error_code(resp) == "complaint_not_upheld"
    assert not Notification.objects.exists() and not Penalty.objects.exists()


def test_the_winner_is_told_of_a_confirmed_award_once(world: World, django_capture_on_commit_callbacks: Any) -> None:
    actions.do_seed_defaults(None, world.bank)
    kind = AwardKind.objects.get(bank=world.bank, code="outstanding_volunteer")  # 300 bonus minutes
    member = world.members["volunteer"]
    credit(world, member, 60)
    ranked = actions.do_rank_awards(None, kind, timezone.localdate().year)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_confirm_award(world.users["head_office_admin"], ranked[0])
        actions.do_confirm_award(world.users["head_office_admin"], ranked[0])  # again: nothing new
    (told,) = _outbox(member.pk)
    assert told.template == "award.confirmed_bonus" and "300 分钟" in told.body and kind.name in told.body


def test_the_correction_page_reverses_a_credit_once(world: World) -> None:
    volunteer = world.members["volunteer"]
    credit(world, volunteer, 90)
    original = Transaction.objects.filter(kind="service_record").latest("pk")
    penalty = actions.do_impose_penalty(None, volunteer, kind="warning", reason="虚报时长")
    url = f"/evaluation/penalties/{penalty.pk}/correction/"
    admin = web_client(world.users["branch_admin"])
    listing = admin.get("/evaluation/penalties/").content.decode()
    assert url in listing
    page = admin.get(url)
    assert page.status_code == 200 and f'value="{original.pk}"' in page.content.decode()
    missing = admin.post(url, {"transaction": original.pk, "reason": ""})
    assert missing.status_code == 422
    done = admin.post(url, {"transaction": original.pk, "reason": "虚报时长，冲正"})
    assert done.status_code == 302
    penalty.refresh_from_db()
    assert penalty.correction is not None and penalty.correction.reverses_id == original.pk
    assert penalty.correction.memo == "虚报时长，冲正"
    assert Account.objects.get(member=volunteer, kind="earned").balance_minutes == 0
    # A second submit changes nothing and says it was done.
    again = admin.post(url, {"transaction": original.pk, "reason": "再冲"})
    assert again.status_code == 200 and "已经做过冲正" in again.content.decode()
    assert Transaction.objects.filter(kind="reversal").count() == 1


def test_only_admins_of_the_volunteer_open_the_correction_page(world: World) -> None:
    penalty = actions.do_impose_penalty(None, world.members["volunteer"], kind="warning", reason="提醒")
    url = f"/evaluation/penalties/{penalty.pk}/correction/"
    expected = {"branch_admin": 200, "head_office_admin": 200, "staff": 403, "volunteer": 403, "other_bank_admin": 404}
    for persona, status in expected.items():
        assert web_client(world.users[persona]).get(url).status_code == status, persona
    resp = web_client(world.users["staff"]).post(url, {"transaction": 1, "reason": "x"})
    assert resp.status_code == 403 and not Transaction.objects.filter(kind="reversal").exists()
