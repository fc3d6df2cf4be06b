"""Notices published automatically when policy changes: new rules, a finished settlement.

They are written inside the changing action's transaction (so they exist exactly when the change does), in
Chinese, the bank's working language. Set TIMEBANK_AUTO_NOTICES = False to turn them off.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from timebank.notices.actions import do_publish_notice
from timebank.notices.models import Audience, Notice, NoticeSource
from timebank.orgs.models import Org, Rules, User


def enabled() -> bool:
    return bool(getattr(settings, "TIMEBANK_AUTO_NOTICES", True))


def _labels() -> dict[str, str]:
    return {
        "multipliers": _("服务倍数"),
        "settlement_period": _("结算周期"),
        "goods_share_percent": _("结算时可兑换物品的比例（%）"),
        "overdraft_minutes": _("可透支的时间（分钟）"),
        "star_thresholds_hours": _("星级所需小时数"),
        "reserve_min_age": _("储存时间自用的最低年龄"),
        "require_insurance_to_dispatch": _("派单须有有效保险"),
        "allow_volunteer_take": _("志愿者可以自己接单"),
        "dispatch_within_hours": _("派单时限（小时）"),
        "confirm_grace_minutes": _("确认宽限（分钟）"),
        "return_visit_after_days": _("回访间隔（天）"),
        "welfare_check_every_days": _("关爱探访间隔（天）"),
        "welfare_check_categories": _("关爱探访对象"),
        "checkin_early_minutes": _("最早提前签到（分钟）"),
        "checkout_grace_minutes": _("签退宽限（分钟）"),
        "serve_relatives": _("可为自己或亲属服务"),
        "approval_threshold_minutes": _("须另一人审核的分钟数"),
    }


def _show(value: Any) -> str:
    if value is None:
        return _("无")
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, dict):
        return "，".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def rules_changed(actor: User | None, rules: Rules, before: dict[str, Any], after: dict[str, Any]) -> Notice | None:
    """The head office changed its rules: tell everyone in the bank what changed."""
    if not enabled():
        return None
    changed = [f for f in after if before.get(f) != after[f]]
    if not changed:
        return None
    with translation.override("zh-hans"):
        labels = _labels()
        lines = [
            _("%(rule)s：由 %(old)s 改为 %(new)s")
            % {"rule": labels.get(f, f), "old": _show(before.get(f)), "new": _show(after[f])}
            for f in changed
        ]
        body = _("总行调整了以下规则，从现在起生效；已经记入的时间不变。") + "\n" + "\n".join(lines)
        title = _("规则调整通知")
    head_office = Org.objects.get(pk=rules.head_office_id)
    return do_publish_notice(
        actor, org=head_office, title=title, body=body, audience=Audience.EVERYONE, source=NoticeSource.RULES
    )


def settlement_finished(settlement: Any) -> Notice | None:
    """A settlement completed: members may now redeem goods with their share."""
    if not enabled():
        return None
    hours = settlement.moved_minutes / 60
    with translation.override("zh-hans"):
        title = _("结算完成通知")
        body = _(
            "截至 %(date)s 的时间已经结算：%(members)s 位会员共 %(hours)s 小时，其中 %(share)s%% 可以到网点兑换物品，"
            "其余储存起来，留给将来的服务。"
        ) % {
            "date": settlement.period_end.isoformat(),
            "members": settlement.members,
            "hours": f"{hours:.1f}".rstrip("0").rstrip("."),
            "share": settlement.goods_share_percent,
        }
    head_office = Org.objects.get(pk=settlement.head_office_id)
    return do_publish_notice(
        settlement.actor,
        org=head_office,
        title=title,
        body=body,
        audience=Audience.EVERYONE,
        source=NoticeSource.SETTLEMENT,
        source_key=f"settlement:{settlement.pk}",
    )
