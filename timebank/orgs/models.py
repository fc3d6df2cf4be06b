from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from timebank.lib.clock import ClockDateTimeField
from timebank.orgs import rules
from timebank.orgs.rules import Group as G


class OrgKind(models.TextChoices):
    HEAD_OFFICE = "head_office", _("总行")
    BRANCH = "branch", _("分行")
    SUB_BRANCH = "sub_branch", _("支行")
    OUTLET = "outlet", _("网点")


# Which kinds may sit under which: branches nest (city → county → township).
ALLOWED_PARENTS: dict[str, set[str]] = {
    OrgKind.BRANCH: {OrgKind.HEAD_OFFICE, OrgKind.BRANCH},
    OrgKind.SUB_BRANCH: {OrgKind.HEAD_OFFICE, OrgKind.BRANCH},
    OrgKind.OUTLET: {OrgKind.BRANCH, OrgKind.SUB_BRANCH},
}


class Org(models.Model):
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=OrgKind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    # The bank this org belongs to: its head office (a head office points at itself).
    head_office = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Materialised path "/1/4/9/": a subtree is one indexed prefix query.
    path = models.CharField(max_length=255, db_index=True, default="")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2

    def contains(self, other: Org) -> bool:
        return bool(self.path) and other.path.startswith(self.path)

    # An org's bank is its head office; a head office is its own bank. The one home of that rule.
    @property
    def bank_pk(self) -> int:
        return int(self.pk if self.kind == OrgKind.HEAD_OFFICE else self.head_office_id or 0)

    @property
    def bank(self) -> Org:
        if self.kind == OrgKind.HEAD_OFFICE or self.head_office_id is None:
            return self
        return self.head_office  # type: ignore[return-value]


class Role(models.TextChoices):
    HEAD_OFFICE_ADMIN = "head_office_admin", _("总行管理员")
    BRANCH_ADMIN = "branch_admin", _("分行管理员")
    STAFF = "staff", _("支行工作人员")
    OPERATOR = "operator", _("热线坐席")
    ASSESSOR = "assessor", _("第三方评估")
    # 民政局, 老干部局, the leading group: reads the figures of its subtree, writes nothing, sees no personal data.
    SUPERVISOR = "supervisor", _("监督单位（只读）")


# Roles that the contract calls "staff": they manage members within their subtree.
MANAGING_ROLES = frozenset({Role.HEAD_OFFICE_ADMIN, Role.BRANCH_ADMIN, Role.STAFF})
ADMIN_ROLES = frozenset({Role.HEAD_OFFICE_ADMIN, Role.BRANCH_ADMIN})
ROLE_RANK = {
    Role.HEAD_OFFICE_ADMIN: 3,
    Role.BRANCH_ADMIN: 2,
    Role.STAFF: 1,
    Role.OPERATOR: 1,
    Role.ASSESSOR: 1,
    Role.SUPERVISOR: 1,
}
# Who reads an org's figures (dashboards, statistics, risk, evaluation) in their subtree: those who manage it and the
# supervisor, who reads only (never a member's personal data: it is in none of READ_ROLES of members).
FIGURE_READERS = frozenset(MANAGING_ROLES | {Role.SUPERVISOR})


class User(AbstractUser):
    """A login. Staff logins carry an org and a role; a member's login is linked from Member.user."""

    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    display_name = models.CharField(max_length=100, blank=True)
    # Set by a reset (the temporary password was shown to someone else): the login may only choose a new one.
    must_change_password = models.BooleanField(default=False)
    # When staff last gave this login a temporary password: it expires and is used once (timebank.orgs.actions
    # TEMPORARY_VALID), and for a while the login may not act for the member's relatives (RESET_HOLD).
    password_reset_at = models.DateTimeField(null=True, blank=True)
    temporary_used_at = models.DateTimeField(null=True, blank=True)


class LoginFailure(models.Model):
    """A failed login for a username from an address, kept a day: the guard of timebank.orgs.lockout counts them
    across addresses (django-axes counts per username and address only)."""

    username = models.CharField(max_length=150)
    address = models.CharField(max_length=45, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["username", "created_at"], name="orgs_loginfail_user_at")]

    def __str__(self) -> str:
        return f"{self.username} from {self.address}"


class KnownLoginAddress(models.Model):
    """An address a login logged in from successfully: it may still try when the username is guarded."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=45)
    last_login_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "address"], name="orgs_known_address_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} at {self.address}"


class ApiToken(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    # Only a hash is stored: a leaked database does not leak usable tokens.
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of {self.user_id}"


def default_multipliers() -> dict[str, Any]:
    return {"ordinary": 1, "technical": 2, "professional": 3}


def default_star_thresholds() -> list[int]:
    return [100, 300, 600, 1000, 1500]


def default_welfare_categories() -> list[str]:
    return ["living_alone", "empty_nest", "disabled"]


def no_categories() -> list[str]:
    return []


class SettlementPeriod(models.TextChoices):
    HALF_YEAR = "half_year", _("每半年")
    YEAR = "year", _("每年")


class Rules(models.Model):
    """The head office's rules. One row per bank."""

    head_office = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="rules")
    # Each rule is declared once, here: `timebank.orgs.rules` builds the action's checks, the API's schemas,
    # the page form, the read-only list and the notice's labels from these declarations.
    multipliers = rules.multipliers(
        default_multipliers,
        tiers=(
            ("ordinary", _("普通服务倍数")),
            ("technical", _("技术服务倍数")),
            ("professional", _("专业服务倍数")),
        ),
        label=_("服务倍数"),
        group=G.MULTIPLIERS,
    )
    settlement_period = rules.choice(
        SettlementPeriod.choices,
        SettlementPeriod.HALF_YEAR,
        max_length=10,
        label=_("结算周期"),
        group=G.SETTLEMENT,
    )
    goods_share_percent = rules.integer(
        50,
        min=0,
        max=100,
        small=True,
        unit="%(n)s%%",
        label=_("结算时换物品的比例（%）"),
        help=_("其余的储存起来，将来换服务。比如 50 表示一半换物品、一半储存。"),
        group=G.SETTLEMENT,
    )
    overdraft_minutes = rules.integer(
        0,
        min=0,
        max=100_000,
        label=_("最多可以透支（分钟）"),
        help=_("0 表示不能透支。可兑换物品的时间永远不能透支。"),
        group=G.ACCOUNT,
    )
    star_thresholds_hours = rules.int_list(
        default_star_thresholds,
        item_min=1,
        item_max=1_000_000,
        max_items=10,
        label=_("星级门槛（小时）"),
        help=_("从一星到最高星，用逗号隔开，逐级递增，例如：100, 300, 600, 1000, 1500"),
        group=G.ACCOUNT,
    )
    reserve_min_age = rules.optional_integer(
        None,
        min=0,
        max=120,
        small=True,
        unit=_("%(n)s 岁"),
        none_text=_("不限"),
        label=_("使用储存时间的最低年龄"),
        help=_("不到这个年龄，储存的时间不能用来给自己换服务（转赠亲属不受影响）。不限制就留空。"),
        group=G.ACCOUNT,
    )
    require_insurance_to_dispatch = rules.boolean(False, label=_("志愿者必须有有效的意外险才能派单"), group=G.DISPATCH)
    # Beyond the contract's minimum: how the service loop runs.
    allow_volunteer_take = rules.boolean(True, label=_("志愿者可以自己接附近的订单"), group=G.DISPATCH)
    dispatch_within_hours = rules.integer(
        24,
        min=1,
        max=24 * 30,
        label=_("派单时限（小时）"),
        help=_("超过这个时间还没派出的订单，在工作台上标为超时。"),
        group=G.DISPATCH,
    )
    confirm_grace_minutes = rules.integer(
        30,
        min=0,
        max=240,
        label=_("确认时可多记的分钟数"),
        help=_("实际服务比预计长时，最多多记这么多。"),
        group=G.DISPATCH,
    )
    return_visit_after_days = rules.integer(
        3,
        min=0,
        max=90,
        label=_("服务后几天内回访"),
        help=_("热线满意度回访的时限。"),
        group=G.DISPATCH,
    )
    welfare_check_every_days = rules.integer(
        7,
        min=1,
        max=365,
        label=_("关爱探访间隔（天）"),
        help=_("下面这些老人，每隔几天问候一次。"),
        group=G.WELFARE,
    )
    welfare_check_categories = rules.multi_choice(
        "timebank.members.models.RecipientCategory",  # members sits above orgs: read when used
        default_welfare_categories,
        max_items=10,
        label=_("需要定期探访的老人"),
        group=G.WELFARE,
    )
    # Trust additions of the contract: the clock, conflicts of interest and four eyes on large credits.
    checkin_early_minutes = rules.integer(
        60,
        min=0,
        max=24 * 60,
        label=_("最早提前多少分钟签到"),
        help=_("比预约时间早于这么多分钟签到会被拒绝。"),
        group=G.TRUST,
    )
    checkout_grace_minutes = rules.integer(
        10,
        min=0,
        max=240,
        label=_("签到签退之外可多记的分钟数"),
        help=_("记的时间最多是签到到签退之间的分钟数再加这么多。"),
        group=G.TRUST,
    )
    serve_relatives = rules.boolean(False, label=_("志愿者可以为自己或亲属服务"), group=G.TRUST)
    approval_threshold_minutes = rules.optional_integer(
        600,
        min=1,
        max=1_000_000,
        none_text=_("不审核"),
        label=_("一次记入超过多少分钟须另一人审核"),
        help=_(
            "调整、服务记录和活动结束时，给一个人记入超过这么多分钟，要由另一位工作人员审核后才入账。留空表示不审核。"
        ),
        group=G.TRUST,
    )
    # Rules other cities use (issue 16), each off by default. Where each is applied:
    # the cap in the ledger's crediting actions (timebank.ledger.actions.credit_legs), the star level wherever
    # stored time pays for a service (timebank.ledger.actions.check_star_gate, answered by evaluation), the grants
    # by a yearly job (timebank.ledger.grants), the guarantee by a daily job (timebank.funds.guarantee).
    storage_cap_hours = rules.optional_integer(
        None,
        min=1,
        max=100_000,
        unit=pgettext_lazy("rule unit", "%(n)s 小时"),
        none_text=_("不限"),
        label=_("个人储存时间上限（小时）"),
        help=_("记入后超过上限的部分自动转入捐赠池，并通知本人（南京、广州为 1500）。留空表示不限。"),
        group=G.ACCOUNT,
    )
    spend_min_star_level = rules.optional_integer(
        None,
        min=1,
        max=10,
        small=True,
        unit=_("%(n)s 星"),
        none_text=_("不限"),
        label=_("使用储存时间的最低星级"),
        help=_("星级不到的会员，储存的时间还不能用来给自己换服务（广州为一星）。留空表示不限。"),
        group=G.ACCOUNT,
    )
    yearly_grant_minutes = rules.optional_integer(
        None,
        min=1,
        max=100_000,
        unit=pgettext_lazy("rule unit", "%(n)s 分钟"),
        none_text=_("不赠与"),
        label=_("每年赠与的时间（分钟）"),
        help=_("每年一次，记入下面这些老人的储存时间。留空表示不赠与。"),
        group=G.GRANTS,
    )
    yearly_grant_categories = rules.multi_choice(
        "timebank.members.models.RecipientCategory",
        no_categories,
        max_items=10,
        label=_("赠与哪些老人（任一类即可）"),
        help=_("不选表示不按类别限制；类别和年龄都不限时不赠与任何人。"),
        group=G.GRANTS,
    )
    yearly_grant_min_age = rules.optional_integer(
        None,
        min=0,
        max=120,
        small=True,
        unit=_("%(n)s 岁"),
        none_text=_("不限"),
        label=_("赠与的最低年龄（当年 1 月 1 日）"),
        help=_("南京：80 岁以上独居老人。留空表示不按年龄限制。"),
        group=G.GRANTS,
    )
    guarantee_after_days = rules.optional_integer(
        None,
        min=1,
        max=365,
        unit=_("%(n)s 天"),
        none_text=_("不兜底"),
        label=_("用储存时间支付的订单几天无人接单就由专项基金购买服务"),
        help=_("留空表示不自动兜底（工作人员仍可手工用专项基金购买服务）。"),
        group=G.GUARANTEE,
    )
    guarantee_yuan_per_hour = rules.optional_integer(
        None,
        min=1,
        max=10_000,
        unit=_("%(n)s 元/小时"),
        label=_("兜底购买服务的价格（元/小时）"),
        help=_("按订单的计划时长付给服务机构，从订单所在机构或上级的专项基金支出。"),
        group=G.GUARANTEE,
    )
    guarantee_provider = rules.text(
        "",
        max_length=100,
        no_personal_numbers=True,
        label=_("兜底的服务机构"),
        help=_("专项基金付款的对象，记入资金账。开启兜底时必须填写。"),
        group=G.GUARANTEE,
    )
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "rules"

    def __str__(self) -> str:
        return f"rules of {self.head_office_id}"
