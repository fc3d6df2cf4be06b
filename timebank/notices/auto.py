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
from timebank.orgs import rules as rule_registry
from timebank.orgs.models import Org, Rules, User


def enabled() -> bool:
    return bool(getattr(settings, "TIMEBANK_AUTO_NOTICES", True))


def rules_changed(actor: User | None, rules: Rules, before: dict[str, Any], after: dict[str, Any]) -> Notice | None:
    """The head office changed its rules: tell everyone in the bank what changed."""
    if not enabled():
        return None
    changed = [f for f in after if before.get(f) != after[f]]
    if not changed:
        return None
    with translation.override("zh-hans"):
        # Labels and how a value reads come from the rules' registry, like the rules page.
        labels = rule_registry.labels()
        lines = [
            _("%(rule)s：由 %(old)s 改为 %(new)s")
            % {
                "rule": labels.get(f, f),
                "old": rule_registry.show(f, before.get(f)),
                "new": rule_registry.show(f, after[f]),
            }
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
