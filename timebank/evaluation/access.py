"""Who may see and do what in evaluation. Another bank's objects are 404; outside one's subtree is 403.

- evaluation rules, indicators, award kinds: head-office admins write; staff, assessors and supervisors of the bank
  read;
- assessments: assessors (role `assessor`) score the sub-branches and outlets of their subtree; staff read
  the assessments of their subtree, assessors and supervisors the ones of theirs; supervisors read the scores of
  their subtree and write nothing;
- self-assessments: a volunteer their own; staff of an org for the org;
- complaints: staff and operators of the org's subtree file and follow up; admins decide;
- penalties: admins of the volunteer's home subtree; staff read; the volunteer reads their own;
- awards: head-office admins rank and confirm; staff of the bank read.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.evaluation.models import Assessment, Award, AwardKind, Complaint, Indicator, Penalty
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import member_of
from timebank.members.models import Member
from timebank.orgs.access import caller_bank_id, has_role, staff_scope
from timebank.orgs.models import ADMIN_ROLES, MANAGING_ROLES, Org, OrgKind, Role, User

READERS = MANAGING_ROLES | {Role.ASSESSOR, Role.SUPERVISOR}
COMPLAINT_ROLES = MANAGING_ROLES | {Role.OPERATOR}
ASSESSED_KINDS = (OrgKind.SUB_BRANCH, OrgKind.OUTLET)


def _same_bank(user: User, bank_id: int | None, message: object) -> None:
    """Another bank's things do not exist for the caller."""
    if not user.is_superuser and (bank_id is None or caller_bank_id(user) != bank_id):
        raise NotFound(message, code="not_found")


def org_in_bank(user: User, org_id: int) -> Org:
    org = Org.objects.filter(pk=org_id).first()
    _same_bank(user, org.head_office_id if org else None, _("找不到该机构。"))
    assert org is not None
    return org


def bank_of(user: User, bank_id: int) -> Org:
    org = org_in_bank(user, bank_id)
    if org.kind != OrgKind.HEAD_OFFICE:
        raise NotFound(_("评价规则只属于总行。"), code="not_head_office")
    return org


def can_read_bank(user: User, bank: Org) -> bool:
    return user.is_superuser or (
        staff_scope(user) is not None and user.role in READERS and caller_bank_id(user) == bank.pk
    )


def access_bank_settings(user: User, bank_id: int, *, write: bool) -> Org:
    """Evaluation rules, indicators and award kinds of a head office."""
    bank = bank_of(user, bank_id)
    if write and not has_role(user, {Role.HEAD_OFFICE_ADMIN}, bank):
        raise Forbidden(_("只有总行管理员可以修改评价规则。"), code="not_head_office_admin")
    if not write and not can_read_bank(user, bank):
        raise Forbidden(_("只有本行的工作人员和评估机构可以查看。"), code="not_allowed")
    return bank


def access_indicator(user: User, indicator_id: int, *, write: bool) -> Indicator:
    indicator = Indicator.objects.filter(pk=indicator_id).first()
    _same_bank(user, indicator.bank_id if indicator else None, _("找不到这个指标。"))
    assert indicator is not None
    access_bank_settings(user, indicator.bank_id, write=write)
    return indicator


def access_award_kind(user: User, kind_id: int, *, write: bool) -> AwardKind:
    kind = AwardKind.objects.filter(pk=kind_id).first()
    _same_bank(user, kind.bank_id if kind else None, _("找不到这个表彰类别。"))
    assert kind is not None
    access_bank_settings(user, kind.bank_id, write=write)
    return kind


def access_assess(user: User, org_id: int) -> Org:
    """Score an org: third-party assessors whose subtree holds it (a sub-branch or an outlet)."""
    org = org_in_bank(user, org_id)
    if not (user.is_superuser or (user.role == Role.ASSESSOR and has_role(user, {Role.ASSESSOR}, org))):
        raise Forbidden(_("只有负责这个范围的第三方评估机构可以评分。"), code="not_assessor")
    if org.kind not in ASSESSED_KINDS:
        raise Forbidden(_("第三方评估只针对支行和网点。"), code="not_assessable")
    return org


def visible_assessments(user: User) -> QuerySet[Assessment]:
    if user.is_superuser:
        return Assessment.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in READERS:
        return Assessment.objects.filter(org__path__startswith=scope.path)
    return Assessment.objects.none()


def access_assessment(user: User, assessment_id: int) -> Assessment:
    assessment = Assessment.objects.select_related("org").filter(pk=assessment_id).first()
    _same_bank(user, assessment.bank_id if assessment else None, _("找不到这份评估。"))
    assert assessment is not None
    if not visible_assessments(user).filter(pk=assessment.pk).exists():
        raise Forbidden(_("这份评估不在您的管辖范围内。"), code="outside_subtree")
    return assessment


def access_org_evaluation(user: User, org_id: int) -> Org:
    """An org's combined score: staff and assessors whose subtree holds it."""
    org = org_in_bank(user, org_id)
    if not has_role(user, READERS, org):
        raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")
    return org


def access_org_self_assessment(user: User, org_id: int) -> Org:
    org = org_in_bank(user, org_id)
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("只有本机构及上级的工作人员可以填写机构自评。"), code="outside_subtree")
    return org


def _member(user: User, member_id: int) -> Member:
    member = Member.objects.select_related("home_org").filter(pk=member_id).first()
    _same_bank(user, member.bank_id if member else None, _("找不到该会员。"))
    assert member is not None
    return member


def access_member_evaluation(user: User, member_id: int) -> Member:
    """A volunteer's star level and combined score: the volunteer, and staff of the home subtree."""
    member = _member(user, member_id)
    me = member_of(user)
    if (me is not None and me.pk == member.pk) or has_role(user, MANAGING_ROLES, member.home_org):
        return member
    raise Forbidden(_("您无权查看这位会员的评价。"), code="outside_subtree")


def access_member_to_penalise(user: User, member_id: int) -> Member:
    member = _member(user, member_id)
    if not has_role(user, ADMIN_ROLES, member.home_org):
        raise Forbidden(_("只有志愿者所在分行或总行的管理员可以作出处理。"), code="not_admin")
    return member


def access_complaint_org(user: User, org_id: int) -> Org:
    org = org_in_bank(user, org_id)
    if not has_role(user, COMPLAINT_ROLES, org):
        raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")
    return org


def access_complaint_volunteer(user: User, member_id: int) -> Member:
    """A volunteer complained about: staff and operators of the volunteer's home subtree."""
    member = _member(user, member_id)
    if not has_role(user, COMPLAINT_ROLES, member.home_org):
        raise Forbidden(_("这位志愿者不在您的管辖范围内。"), code="outside_subtree")
    return member


def visible_complaints(user: User) -> QuerySet[Complaint]:
    """The complaints about the caller's subtree, and those its staff filed (about another community's volunteer)."""
    if user.is_superuser:
        return Complaint.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in COMPLAINT_ROLES:
        return Complaint.objects.filter(Q(org__path__startswith=scope.path) | Q(filed_in__path__startswith=scope.path))
    return Complaint.objects.none()


def access_complaint(user: User, complaint_id: int, *, decide: bool = False) -> Complaint:
    """Staff and operators of the subtree complained about or of the one that filed it read and follow it up;
    whether it is upheld is decided by the admins of the subtree complained about."""
    complaint = Complaint.objects.select_related("org", "volunteer", "filed_in").filter(pk=complaint_id).first()
    _same_bank(user, complaint.bank_id if complaint else None, _("找不到这条投诉。"))
    assert complaint is not None
    follows = has_role(user, COMPLAINT_ROLES, complaint.org) or (
        complaint.filed_in is not None and has_role(user, COMPLAINT_ROLES, complaint.filed_in)
    )
    if not follows:
        raise Forbidden(_("这条投诉不在您的管辖范围内。"), code="outside_subtree")
    if decide and not has_role(user, ADMIN_ROLES, complaint.org):
        raise Forbidden(_("投诉是否成立由分行或总行管理员认定。"), code="not_admin")
    return complaint


def visible_penalties(user: User) -> QuerySet[Penalty]:
    if user.is_superuser:
        return Penalty.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in MANAGING_ROLES:
        return Penalty.objects.filter(member__home_org__path__startswith=scope.path)
    me = member_of(user)
    return Penalty.objects.filter(member=me) if me is not None else Penalty.objects.none()


def access_penalty(user: User, penalty_id: int, *, manage: bool = False) -> Penalty:
    penalty = Penalty.objects.select_related("member", "member__home_org").filter(pk=penalty_id).first()
    _same_bank(user, penalty.bank_id if penalty else None, _("找不到这项处理。"))
    assert penalty is not None
    if manage:
        access_member_to_penalise(user, penalty.member_id)
    elif not visible_penalties(user).filter(pk=penalty.pk).exists():
        raise Forbidden(_("这项处理不在您的管辖范围内。"), code="outside_subtree")
    return penalty


def visible_awards(user: User) -> QuerySet[Award]:
    if user.is_superuser:
        return Award.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in MANAGING_ROLES:
        return Award.objects.filter(bank_id=scope.head_office_id)
    return Award.objects.none()


def access_award(user: User, award_id: int, *, confirm: bool = False) -> Award:
    award = Award.objects.select_related("kind").filter(pk=award_id).first()
    _same_bank(user, award.bank_id if award else None, _("找不到这项表彰。"))
    assert award is not None
    access_bank_settings(user, award.bank_id, write=confirm)
    return award


def member_scope_q(user: User) -> Q:
    """Members a staff login may see in evaluation lists."""
    scope = staff_scope(user)
    return Q() if user.is_superuser or scope is None else Q(home_org__path__startswith=scope.path)
