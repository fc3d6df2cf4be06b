"""A volunteer sees their own insurance and certificates on their page, in plain words, in Chinese and English."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from tests.conftest import World, web_client
from timebank.safety.actions import do_add_certificate, do_add_insurance_policy


def test_volunteer_sees_cover_and_certificates(world: World) -> None:
    staff = world.users["staff"]
    v = world.members["volunteer"]
    today = timezone.localdate()
    do_add_insurance_policy(
        staff,
        v,
        insurer="人保财险",
        policy_number="PA-2026-001",
        starts_on=today - dt.timedelta(days=400),
        ends_on=today - dt.timedelta(days=35),
    )
    do_add_insurance_policy(
        staff,
        v,
        insurer="平安保险",
        policy_number="PA-2026-002",
        starts_on=today - dt.timedelta(days=30),
        ends_on=today + dt.timedelta(days=335),
    )
    do_add_certificate(
        staff, v, kind="nursing", issuer="区卫健委", valid_from=today, valid_until=today + dt.timedelta(days=700)
    )
    do_add_certificate(
        staff, v, kind="legal", issuer="司法局", valid_from=today + dt.timedelta(days=3), valid_until=None
    )

    page = web_client(v.user).get("/volunteer/").content.decode()
    assert "我的保险和证书" in page
    assert "平安保险" in page and "人保财险" in page and "已过期" in page
    assert "护理" in page and "区卫健委" in page and "有效到" in page
    assert "法律" in page and "起有效" in page
    assert "PA-2026" not in page  # the policy number is for staff, not needed here

    english = web_client(v.user, lang="en").get("/volunteer/").content.decode()
    assert "My insurance and certificates" in english and "Nursing" in english and "valid from" in english


def test_volunteer_without_cover_is_told_what_to_do(world: World) -> None:
    page = web_client(world.members["volunteer"].user).get("/volunteer/").content.decode()
    assert "还没有登记意外险" in page and "还没有登记资质证书" in page
