"""Demo notices (published on the demo's launch day, so the clock is the demo's): a pinned one from the head office, a branch notice to volunteers, a staff-only one, an expired
one and a withdrawn one, so every state shows on the pages."""

from __future__ import annotations

import datetime as dt

from timebank.lib import clock
from timebank.notices.actions import do_publish_notice, do_withdraw_notice
from timebank.notices.models import Audience, Notice
from timebank.orgs.models import Org, User


def seed_notices(orgs: dict[str, Org], users: dict[str, User]) -> list[Notice]:
    """`orgs` and `users` by the demo's names; orgs or logins missing from the plan are skipped."""
    head_office = orgs.get("台儿庄区时间银行")
    branch = orgs.get("运河街道")
    community = orgs.get("顺河社区")
    ho_admin = users.get("ho_admin")
    made: list[Notice] = []
    if head_office is None or ho_admin is None:
        return made
    today = clock.localdate()
    made.append(
        do_publish_notice(
            ho_admin,
            org=head_office,
            title="敬老服务月活动安排",
            body="本月为敬老服务月。各社区组织志愿者上门陪伴、理发、打扫卫生，服务时间照常存入时间账户。\n"
            "需要服务的老人可以在首页点单，或拨打 12349。",
            audience=Audience.EVERYONE,
            pinned=True,
        )
    )
    if branch is not None:
        made.append(
            do_publish_notice(
                users.get("branch_admin") or ho_admin,
                org=branch,
                title="志愿者急救培训报名",
                body="运河街道将在下周六上午举办急救培训，参加培训并通过考核的志愿者可获得证书。请到所在社区报名。",
                audience=Audience.VOLUNTEERS,
            )
        )
    if community is not None:
        made.append(
            do_publish_notice(
                users.get("staff") or ho_admin,
                org=community,
                title="本周值班安排（工作人员）",
                body="周一至周五由李娜值班，周末由热线坐席接单后转派。请及时处理超时未派的订单。",
                audience=Audience.STAFF,
            )
        )
    # Published on the demo's launch day with a short life: expired by now.
    made.append(
        do_publish_notice(
            ho_admin,
            org=head_office,
            title="开业首周：到社区登记有礼",
            body="时间银行开业首周，到社区登记成为会员的居民可领取一份纪念品。",
            audience=Audience.EVERYONE,
            expires_on=today + dt.timedelta(days=7),
        )
    )
    withdrawn = do_publish_notice(
        ho_admin,
        org=head_office,
        title="（发错了）网点地址变更",
        body="此通知有误，已撤回。",
        audience=Audience.EVERYONE,
    )
    made.append(do_withdraw_notice(ho_admin, withdrawn))
    return made
