"""Demo evaluation data: the default indicators and award kinds, a few third-party assessments, self-assessments,
a complaint followed up and upheld, penalties (a warning after the complaint, a suspension in force), and this
year's award ranking with some winners confirmed. Called once by the demo generator, after its timeline."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from timebank.evaluation import actions
from timebank.evaluation.models import AwardKind, AwardSubject, Indicator
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.members.models import Member, MemberStatus
from timebank.orgs.models import Org, OrgKind, User

BANK = "台儿庄区时间银行"


def _score(rng: random.Random, low: int = 70, high: int = 98) -> Decimal:
    return Decimal(rng.randint(low * 10, high * 10)) / 10


def seed_evaluation(orgs: dict[str, Org], users: dict[str, User], *, seed: int = 2019) -> None:
    """`orgs` and `users` by the demo's names; anything missing from the plan is skipped."""
    rng = random.Random(seed)
    for head_office in (o for o in orgs.values() if o.kind == OrgKind.HEAD_OFFICE):
        admin = users.get("ho_admin") if head_office.name == BANK else users.get("nc_admin")
        actions.do_seed_defaults(admin, head_office)
    bank = orgs.get(BANK)
    admin, assessor = users.get("ho_admin"), users.get("assessor")
    if bank is None or admin is None:
        return
    year = clock.localdate().year
    grassroots = list(Org.objects.filter(head_office=bank, kind__in=(OrgKind.SUB_BRANCH, OrgKind.OUTLET))[:6])
    indicators = list(Indicator.objects.filter(bank=bank, active=True))
    for org in grassroots[:4]:
        if assessor is not None:
            actions.do_record_assessment(
                assessor,
                org,
                year=year,
                scores={i.pk: _score(rng) for i in indicators},
                note="台账齐全，服务记录可追溯。",
            )
        actions.do_self_assess(admin, org=org, year=year, score=_score(rng, 80, 95), summary="按计划开展志愿服务。")

    volunteers = list(
        Member.objects.filter(bank=bank, is_volunteer=True, status=MemberStatus.ACTIVE).order_by("pk")[:12]
    )
    demo_volunteer = getattr(users.get("volunteer"), "member", None)
    for member in volunteers[:8]:
        actor = member.user if member.user_id else admin
        actions.do_self_assess(
            actor, member=member, year=year, score=_score(rng, 75, 95), summary="按时上门，认真服务。"
        )

    # Not the demo's own volunteer login: their star level should show the plain progress.
    others = [m for m in volunteers if demo_volunteer is None or m.pk != demo_volunteer.pk]
    if len(others) >= 2:
        operator, staff, branch_admin = users.get("operator"), users.get("staff"), users.get("branch_admin")
        complained = others[-1]
        complaint = actions.do_file_complaint(
            operator or admin,
            org=None,
            volunteer=complained,
            complainant="服务对象家属",
            text="约定上午九点上门，迟到一个多小时且未提前告知。",
        )
        actions.do_follow_up_complaint(staff or admin, complaint, "已电话联系志愿者核实，确有迟到。")
        actions.do_decide_complaint(branch_admin or admin, complaint, upheld=True, note="核实成立，给予警告。")
        actions.do_impose_penalty(
            branch_admin or admin, complained, kind="warning", reason="迟到且未提前告知服务对象。", complaint=complaint
        )
        open_complaint = actions.do_file_complaint(
            operator or admin, org=others[0].home_org, text="希望周末也能安排助餐服务。"
        )
        actions.do_follow_up_complaint(staff or admin, open_complaint, "已转社区研究周末排班。")
        actions.do_impose_penalty(
            admin,
            others[-2],
            kind="suspension",
            reason="连续两次接单后未到场。",
            ends_on=clock.localdate() + dt.timedelta(days=14),
        )

    for kind in AwardKind.objects.filter(bank=bank, active=True):
        try:
            ranked = actions.do_rank_awards(admin, kind, year)
            for award in ranked[: 2 if kind.subject == AwardSubject.VOLUNTEER else 1]:
                actions.do_confirm_award(admin, award)
        except ApiError:
            continue  # e.g. a winner whose membership ended: the demo goes on
