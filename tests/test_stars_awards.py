"""Star levels (星级评定) at every threshold and their hold-back; yearly awards ranked and confirmed once."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import World, error_code, make_member
from tests.evaluation_helpers import credit, served_order
from timebank.approvals.actions import do_approve
from timebank.approvals.models import Approval
from timebank.evaluation import actions
from timebank.evaluation.models import Award, AwardKind, AwardStatus, EvaluationRules
from timebank.evaluation.stars import LOW_RATING, UPHELD_COMPLAINTS, level_for_minutes, star_level
from timebank.ledger.models import Account, AccountKind, Transaction
from timebank.members.models import Member
from timebank.orgs.actions import do_create_staff, do_issue_token, do_update_rules
from timebank.orgs.models import Rules

DEFAULT = [100, 300, 600, 1000, 1500]


@pytest.mark.parametrize("index", range(5))
def test_default_thresholds_below_at_and_above(index: int) -> None:
    hours = DEFAULT[index]
    assert level_for_minutes(hours * 60 - 1, DEFAULT) == index
    assert level_for_minutes(hours * 60, DEFAULT) == index + 1
    assert level_for_minutes(hours * 60 + 1, DEFAULT) == index + 1
    assert level_for_minutes(0, DEFAULT) == 0


def _thresholds(world: World, hours: list[int]) -> None:
    do_update_rules(None, Rules.objects.get(head_office=world.bank), {"star_thresholds_hours": hours})


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize(("offset", "extra"), [(-1, 0), (0, 1), (1, 1)])
def test_star_level_from_credited_time_at_each_threshold(world: World, index: int, offset: int, extra: int) -> None:
    """With the head office's thresholds edited to 1..5 hours: just below, at and just above each."""
    _thresholds(world, [1, 2, 3, 4, 5])
    member = make_member(world.community, "星级测试")
    credit(world, member, (index + 1) * 60 + offset)
    level = star_level(member)
    assert level.level == level.earned_level == index + extra
    assert level.held_back == []


def test_default_first_star_and_progress(world: World) -> None:
    member = world.members["volunteer"]
    credit(world, member, 100 * 60 - 1)
    below = star_level(member)
    assert (below.level, below.next_threshold_hours, below.minutes_to_next) == (0, 100, 1)
    assert below.progress_percent == 99
    credit(world, member, 1)
    at = star_level(member)
    assert (at.level, at.next_threshold_hours, at.minutes_to_next, at.progress_percent) == (1, 300, 200 * 60, 0)


def test_top_level_has_no_next(world: World) -> None:
    _thresholds(world, [1, 2])
    member = world.members["volunteer"]
    credit(world, member, 150)
    level = star_level(member)
    assert (level.level, level.next_threshold_hours, level.minutes_to_next, level.progress_percent) == (
        2,
        None,
        None,
        100,
    )


def test_low_ratings_hold_back_one_star(world: World) -> None:
    _thresholds(world, [1, 2, 3])
    member = world.members["volunteer"]
    credit(world, member, 120)  # two stars by time
    for rating in (2, 3):
        served_order(world, member, minutes=1, rating=rating)  # +2 minutes: still two stars
    assert star_level(member).level == 2  # two reviews: fewer than the rules' minimum of 3
    served_order(world, member, minutes=1, rating=3)  # average 2.67 < 3.00 over 3 reviews
    level = star_level(member)
    assert (level.earned_level, level.level, level.held_back) == (2, 1, [LOW_RATING])
    assert str(level.average_rating) == "2.67"


def test_rating_at_the_limit_is_not_held_back(world: World) -> None:
    _thresholds(world, [1])
    member = world.members["volunteer"]
    for _ in range(3):
        served_order(world, member, minutes=20, rating=3)
    level = star_level(member)
    assert (level.level, level.held_back) == (1, [])


def test_upheld_complaint_holds_back_and_dismissed_does_not(world: World) -> None:
    _thresholds(world, [1, 2])
    member = world.members["volunteer"]
    credit(world, member, 120)
    dismissed = actions.do_file_complaint(None, org=None, volunteer=member, text="迟到")
    actions.do_decide_complaint(None, dismissed, upheld=False, note="核实后不成立")
    assert star_level(member).level == 2
    upheld = actions.do_file_complaint(None, org=None, volunteer=member, text="服务态度差")
    actions.do_decide_complaint(None, upheld, upheld=True, note="核实成立")
    level = star_level(member)
    assert (level.level, level.held_back, level.upheld_complaints) == (1, [UPHELD_COMPLAINTS], 1)
    # Both reasons: two stars lost, never below none.
    actions.do_update_rules(None, world.bank, {"star_hold_rating_below": "4.5", "star_min_reviews": 1})
    served_order(world, member, minutes=1, rating=4)
    level = star_level(member)
    assert (level.level, sorted(level.held_back)) == (0, sorted([LOW_RATING, UPHELD_COMPLAINTS]))


def test_reversed_credit_does_not_count(world: World) -> None:
    from timebank.ledger.actions import do_reversal

    _thresholds(world, [1])
    member = world.members["volunteer"]
    credit(world, member, 60)
    assert star_level(member).level == 1
    tx = Transaction.objects.filter(kind="service_record").latest("pk")
    do_reversal(None, original=tx, reason="重复登记")
    assert star_level(member).level == 0


# Awards ---------------------------------------------------------------------------------------------------------


def _earned(member: Member) -> int:
    return Account.objects.get(member=member, kind=AccountKind.EARNED).balance_minutes


def test_ranking_and_confirmation_credit_the_bonus_once(world: World) -> None:
    actions.do_seed_defaults(None, world.bank)
    kind = AwardKind.objects.get(bank=world.bank, code="outstanding_volunteer")  # by credited hours, 300 min bonus
    a, b = world.members["volunteer"], world.members["neighbour"]
    credit(world, a, 600)
    credit(world, b, 900)
    year = timezone.localdate().year
    ranked = actions.do_rank_awards(world.users["head_office_admin"], kind, year)
    assert [(x.member_id, x.rank, str(x.score)) for x in ranked] == [(b.pk, 1, "15.00"), (a.pk, 2, "10.00")]
    before = _earned(b)
    award, first = actions.do_confirm_award(world.users["head_office_admin"], ranked[0])
    assert first and award.status == AwardStatus.CONFIRMED
    # b was credited 900 minutes by service records today: with the 300-minute bonus that is above the head
    # office's approval threshold (600), so the bonus waits for a second person (四眼原则), who approves it.
    assert _earned(b) == before and award.bonus_transaction_id is None
    do_approve(world.users["superuser"], Approval.objects.get(kind="award_bonus", payload__award_id=award.pk))
    award.refresh_from_db()
    assert _earned(b) == before + 300 and award.bonus_transaction_id is not None
    again, second = actions.do_confirm_award(world.users["superuser"], ranked[0])
    assert not second and again.bonus_transaction_id == award.bonus_transaction_id
    assert _earned(b) == before + 300
    assert Transaction.objects.filter(idempotency_key=f"award-bonus-{award.pk}").count() == 1
    # Ranking again keeps the confirmed winner and replaces only the nominations.
    ranked = actions.do_rank_awards(None, kind, year)
    assert [(x.member_id, x.status) for x in ranked] == [(b.pk, "confirmed"), (a.pk, "nominated")]


def test_confirmations_stop_at_the_number_of_winners(world: World) -> None:
    actions.do_seed_defaults(None, world.bank)
    kind = AwardKind.objects.get(bank=world.bank, code="outstanding_volunteer")
    actions.do_update_award_kind(None, kind, actions.AwardKindInput(winners=1))
    credit(world, world.members["volunteer"], 60)
    credit(world, world.members["neighbour"], 30)
    ranked = actions.do_rank_awards(None, kind, timezone.localdate().year)
    actions.do_confirm_award(None, ranked[0])
    with pytest.raises(Exception) as exc:
        actions.do_confirm_award(None, ranked[1])
    assert getattr(exc.value, "code", "") == "winners_full"


def test_suspended_or_complained_volunteers_are_not_ranked(world: World) -> None:
    actions.do_seed_defaults(None, world.bank)
    kind = AwardKind.objects.get(bank=world.bank, code="outstanding_volunteer")
    a, b = world.members["volunteer"], world.members["neighbour"]
    credit(world, a, 60)
    credit(world, b, 60)
    actions.do_impose_penalty(None, a, kind="suspension", reason="未经允许收取礼金")
    complaint = actions.do_file_complaint(None, org=None, volunteer=b, text="态度差")
    actions.do_decide_complaint(None, complaint, upheld=True, note="成立")
    assert actions.do_rank_awards(None, kind, timezone.localdate().year) == []


def test_org_awards_rank_grassroots_orgs(world: World) -> None:
    actions.do_seed_defaults(None, world.bank)
    kind = AwardKind.objects.get(bank=world.bank, code="welfare_org_participation")
    credit(world, world.members["volunteer"], 120)  # 顺河社区
    credit(world, world.members["neighbour"], 60)  # 泥沟村
    ranked = actions.do_rank_awards(None, kind, timezone.localdate().year)
    assert [(x.org_id, str(x.score)) for x in ranked] == [(world.community.pk, "2.00"), (world.community2.pk, "1.00")]
    award, _new = actions.do_confirm_award(None, ranked[0])
    assert award.bonus_transaction_id is None  # credits go to members only


def test_award_api_confirm_is_idempotent_and_head_office_only(world: World) -> None:
    actions.do_seed_defaults(None, world.bank)
    kind = AwardKind.objects.get(bank=world.bank, code="most_beautiful_volunteer")  # combined score, 600 bonus
    member = world.members["volunteer"]
    credit(world, member, 60)
    served_order(world, member, minutes=30, rating=5)
    year = timezone.localdate().year
    admin = world.api("head_office_admin")
    resp = admin.post(f"/api/v1/award-kinds/{kind.pk}/rank", {"year": year})
    assert resp.status_code == 200, resp.content
    items = resp.json()["items"]
    assert [i["member_id"] for i in items] == [member.pk]
    assert items[0]["score"] == "100.00"  # satisfaction 5 × 20, the only part known
    award_id = items[0]["id"]
    assert world.api("branch_admin").post(f"/api/v1/awards/{award_id}/confirm").status_code == 403
    assert world.api("other_bank_admin").post(f"/api/v1/awards/{award_id}/confirm").status_code == 404
    # The second head-office admin is there before the bonus is asked for (a login made later may not approve).
    second_admin = do_create_staff(
        world.users["superuser"],
        org=world.bank,
        username="ho_two",
        password="pass-word-1",
        name="ho_two",
        role="head_office_admin",
    )
    before = _earned(member)
    first = admin.post(f"/api/v1/awards/{award_id}/confirm")
    second = admin.post(f"/api/v1/awards/{award_id}/confirm")
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "confirmed" and first.json() == second.json()
    # 60 minutes by service record today and the 600-minute bonus: above the approval threshold (600), so the
    # bonus waits until a second head-office admin, not the one who confirmed, approves it (四眼原则).
    assert _earned(member) == before and first.json()["bonus_transaction_id"] is None
    waiting = Approval.objects.get(kind="award_bonus", payload__award_id=award_id)
    assert admin.post(f"/api/v1/approvals/{waiting.pk}/approve").status_code == 403
    resp = Client().post(
        f"/api/v1/approvals/{waiting.pk}/approve", HTTP_AUTHORIZATION=f"Bearer {do_issue_token(second_admin)}"
    )
    assert resp.status_code == 200, resp.content
    assert _earned(member) == before + 600
    assert Award.objects.get(pk=award_id).bonus_transaction is not None
    assert (
        admin.post(f"/api/v1/awards/{award_id}/confirm").json()["bonus_transaction_id"] == resp.json()["transaction_id"]
    )


def test_rules_and_kinds_are_editable(world: World) -> None:
    admin = world.api("head_office_admin")
    resp = admin.patch(f"/api/v1/orgs/{world.bank.pk}/evaluation-rules", {"third_party_weight": 50, "self_weight": 10})
    assert resp.status_code == 200, resp.content
    assert EvaluationRules.objects.get(head_office=world.bank).third_party_weight == 50
    assert (
        admin.patch(
            f"/api/v1/orgs/{world.bank.pk}/evaluation-rules",
            {"third_party_weight": 0, "self_weight": 0, "satisfaction_weight": 0},
        ).status_code
        == 422
    )
    assert (
        world.api("branch_admin")
        .patch(f"/api/v1/orgs/{world.bank.pk}/evaluation-rules", {"self_weight": 5})
        .status_code
        == 403
    )
    resp = admin.post(
        f"/api/v1/orgs/{world.bank.pk}/award-kinds",
        {"code": "caring_company_x", "name": "爱心企业奖", "subject": "org", "basis": "credited_hours", "winners": 3},
    )
    assert resp.status_code == 201, resp.content
    dup = admin.post(
        f"/api/v1/orgs/{world.bank.pk}/award-kinds",
        {"code": "caring_company_x", "name": "重复", "subject": "org"},
    )
    assert dup.status_code == 409 and error_code(dup) == "duplicate_code"


def test_demo_has_evaluation_data(db: None) -> None:
    from timebank.demo.generator import generate
    from timebank.evaluation.models import Assessment, Complaint, Indicator, Penalty, SelfAssessment
    from timebank.ledger.verify import verify

    generate(members=120, seed=3)
    assert Indicator.objects.count() == 6  # three per bank
    assert Assessment.objects.exists() and SelfAssessment.objects.filter(member__isnull=False).exists()
    complaint = Complaint.objects.filter(status="upheld").first()
    assert complaint is not None and complaint.follow_ups.exists()
    assert set(Penalty.objects.values_list("kind", flat=True)) == {"warning", "suspension"}
    assert Award.objects.filter(status=AwardStatus.CONFIRMED).exists()
    assert verify().ok
