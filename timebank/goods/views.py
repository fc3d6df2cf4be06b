"""Goods at the outlet (兑换物品): the counter for the outlet's staff (stock, restock, stock count, redeeming for a
member, checking a voucher and handing the goods over), and the member's own pages (choose goods, redeem from
the 可兑换物品 time, show the voucher's QR code)."""

from __future__ import annotations

from typing import Any

import segno
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.goods import actions
from timebank.goods.access import access_card_code, access_goods, access_redeem, access_redemption, visible_goods
from timebank.goods.forms import (
    CardRedeemForm,
    CounterRedeemForm,
    CountForm,
    FindMemberForm,
    GoodsForm,
    MemberRedeemForm,
    RestockForm,
    VoucherForm,
    clean_voucher_code,
)
from timebank.goods.models import Goods, Redemption, VoucherStatus
from timebank.ledger.models import Account, AccountKind
from timebank.lib.errors import ApiError, Conflict, Forbidden, NotFound
from timebank.lib.masking import mask_phone
from timebank.members.access import access_member_to_manage, visible_members
from timebank.members.models import Member, MemberStatus
from timebank.members.person import NameShield, who
from timebank.ops.idempotency import form_once
from timebank.orgs.access import recently_reset
from timebank.orgs.models import Org, OrgKind, User
from timebank.orgs.scope import manage_org, managed_orgs, require_manager, user_of
from timebank.web.forms import new_idempotency_key
from timebank.web.templatetags.web import hours
from timebank.web.views.common import add_form_error, explain, page, safe_next

COUNTER_KINDS = (OrgKind.OUTLET, OrgKind.SUB_BRANCH)
MEMBERS_FOUND = 20


def _counter(user: User, org_id: int) -> Org:
    return manage_org(user, org_id, COUNTER_KINDS)


def voucher_svg(code: str, title: str) -> SafeString:
    """The voucher's QR code as inline SVG. Safe: segno draws it from a hex code and our own title."""
    qr = segno.make(f"TBV:{code}", error="m")
    return mark_safe(qr.svg_inline(scale=8, omitsize=True, svgclass="qr-code", lineclass=None, title=title))  # noqa: S308


def grouped_code(code: str) -> str:
    """1a2b 3c4d 5e6f 7a8b: easier to read aloud and to type."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def voucher_url(code: str) -> str:
    """The outlet's voucher page for a code: grouped 4+4 in the box too, as the member reads it out."""
    return f"{reverse('web:voucher_check')}?{urlencode({'code': grouped_code(code)})}"


def goods_minutes(member: Member) -> int:
    return (
        Account.objects.filter(member=member, kind=AccountKind.GOODS).values_list("balance_minutes", flat=True).first()
        or 0
    )


# The counter ------------------------------------------------------------------------------------------


@page("workbench")
def counters(request: HttpRequest) -> HttpResponse:
    """Which counter: the outlets and communities the caller manages (straight there when there is one)."""
    user = user_of(request)
    orgs = list(managed_orgs(user, COUNTER_KINDS)[:200])
    outlets = [o for o in orgs if o.kind == OrgKind.OUTLET]
    if len(outlets) == 1 and len(orgs) <= 2:
        return redirect("web:outlet_counter", org_id=outlets[0].pk)
    return render(request, "goods/counters.html", {"orgs": orgs})


def _goods_rows(org: Org, bound: dict[str, Any]) -> list[Goods]:
    rows = list(Goods.objects.filter(outlet=org).order_by("-active", "name", "pk"))
    for g in rows:
        g.restock_form = bound.get(f"restock:{g.pk}") or RestockForm(  # type: ignore[attr-defined]
            prefix=f"r{g.pk}", initial={"idempotency_key": new_idempotency_key()}
        )
        g.count_form = bound.get(f"count:{g.pk}") or CountForm(  # type: ignore[attr-defined]
            prefix=f"c{g.pk}", initial={"counted": g.stock}
        )
        g.open = f"restock:{g.pk}" in bound or f"count:{g.pk}" in bound  # type: ignore[attr-defined]
    return rows


def _counter_page(request: HttpRequest, org: Org, *, status: int = 200, **bound: Any) -> HttpResponse:
    user = user_of(request)
    shield = NameShield(user)
    recent = list(Redemption.objects.filter(outlet=org).select_related("goods", "member").order_by("-pk")[:10])
    for r in recent:
        r.member_name = shield.member(r.member)  # type: ignore[attr-defined]
    context = {
        "org": org,
        "goods": _goods_rows(org, bound),
        "goods_form": bound.get("goods") or GoodsForm(initial={"idempotency_key": new_idempotency_key()}),
        "voucher_form": VoucherForm(),
        "recent": recent,
    }
    return render(request, "goods/counter.html", context, status=status)


@page("workbench")
def counter(request: HttpRequest, org_id: int) -> HttpResponse:
    return _counter_page(request, _counter(user_of(request), org_id))


@require_POST
@page("workbench")
def add_goods(request: HttpRequest, org_id: int) -> HttpResponse:
    user = user_of(request)
    org = _counter(user, org_id)
    form = GoodsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with form_once(request, data["idempotency_key"], "goods.add_goods") as once:
                if once.replay is not None:
                    messages.info(request, _("这张表已经提交过了，没有重复添加。"))
                    return redirect("web:outlet_counter", org_id=org.pk)
                goods = actions.do_create_goods(
                    user, outlet=org, name=data["name"], price_minutes=data["price_minutes"], stock=data["stock"]
                )
                once.keep(str(goods.pk))
        except ApiError as exc:
            add_form_error(form, exc, {"stock": "stock"})
        else:
            messages.success(request, _("已添加物品：%(name)s。") % {"name": goods.name})
            return redirect("web:outlet_counter", org_id=org.pk)
    return _counter_page(request, org, status=422, goods=form)


@require_POST
@page("workbench")
def stock_action(request: HttpRequest, goods_id: int, action: str) -> HttpResponse:
    """restock (入库) or count (盘点) one goods, then back to its counter."""
    user = user_of(request)
    goods = access_goods(user, goods_id, manage=True)
    org = goods.outlet
    form: RestockForm | CountForm
    if action == "restock":
        form = RestockForm(request.POST, prefix=f"r{goods.pk}")
    else:
        form = CountForm(request.POST, prefix=f"c{goods.pk}")
    if form.is_valid():
        data = form.cleaned_data
        try:
            if isinstance(form, RestockForm):
                with form_once(request, data["idempotency_key"], "goods.restock") as once:
                    if once.replay is not None:
                        messages.info(request, _("这张表已经提交过了，没有重复入库。"))
                        return redirect("web:outlet_counter", org_id=org.pk)
                    goods = actions.do_restock(user, goods, quantity=data["quantity"], note=data["note"])
                    once.keep(str(goods.pk))
                done = _("已入库 %(n)s 件，%(name)s 现有 %(stock)s 件。")
                messages.success(request, done % {"n": data["quantity"], "name": goods.name, "stock": goods.stock})
            else:
                goods = actions.do_stock_count(user, goods, counted=data["counted"], note=data["note"])
                messages.success(
                    request, _("盘点已记下：%(name)s 实有 %(stock)s 件。") % {"name": goods.name, "stock": goods.stock}
                )
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            return redirect(f"{reverse('web:outlet_counter', args=[org.pk])}#goods-{goods.pk}")
    return _counter_page(request, org, status=422, **{f"{action}:{goods.pk}": form})


def _member_label(member: Member, goods: int, shield: NameShield) -> str:
    parts = [shield.member(member), member.home_org.name]
    if member.phone:
        parts.append(mask_phone(member.phone))
    parts.append(str(_("可换物品 %(t)s") % {"t": hours(goods)}))
    return " · ".join(parts)


def _found_members(user: User, org: Org, q: str) -> list[tuple[int, str]]:
    """Active members of this bank that the caller manages, by name or phone. Members of other communities
    redeem on their own phone and show the voucher here (their names are not listed to other staff)."""
    if not q:
        return []
    qs = (
        visible_members(user)
        .filter(bank_id=org.head_office_id, status=MemberStatus.ACTIVE)
        .filter(Q(name__contains=q) | Q(phone__contains=q))
        .select_related("home_org")
        .order_by("name", "pk")[:MEMBERS_FOUND]
    )
    return _labelled(user, list(qs))


def _labelled(user: User, members: list[Member]) -> list[tuple[int, str]]:
    shield = NameShield(user)
    wallets = dict(
        Account.objects.filter(member__in=members, kind=AccountKind.GOODS).values_list("member_id", "balance_minutes")
    )
    return [(m.pk, _member_label(m, wallets.get(m.pk, 0), shield)) for m in members]


def _goods_choices(org: Org) -> list[tuple[int, str]]:
    return [
        (
            g.pk,
            str(
                _("%(name)s · 每件 %(price)s · 还有 %(stock)s 件")
                % {"name": g.name, "price": hours(g.price_minutes), "stock": g.stock}
            ),
        )
        for g in Goods.objects.filter(outlet=org, active=True, stock__gt=0).order_by("name", "pk")
    ]


@page("workbench")
def counter_redeem(request: HttpRequest, org_id: int) -> HttpResponse:
    """Redeem for a member standing at the counter: find them, choose the goods, and the voucher is ready to hand
    over at once."""
    user = user_of(request)
    org = _counter(user, org_id)
    source = request.POST if request.method == "POST" else request.GET
    find = FindMemberForm(source)
    q = find.cleaned_data["q"].strip() if find.is_valid() else ""
    members = _found_members(user, org, q)
    goods = _goods_choices(org)  # one query for every form on the page
    card_form = CardRedeemForm(goods=goods, initial={"idempotency_key": new_idempotency_key()})
    status = 200
    if request.method == "POST" and request.POST.get("via") == "card":
        card_form = CardRedeemForm(request.POST, goods=goods)
        form = CounterRedeemForm(members=members, goods=goods)
        if card_form.is_valid():
            done, status = _redeem_by_card(request, org, card_form)
            if done is not None:
                return done
        else:
            status = 422
    elif request.method == "POST":
        raw = request.POST.get("member", "")
        if raw.isdigit() and len(raw) <= 18 and not any(pk == int(raw) for pk, _label in members):
            chosen = visible_members(user).filter(pk=int(raw), bank_id=org.head_office_id, status=MemberStatus.ACTIVE)
            members = _labelled(user, list(chosen.select_related("home_org"))) + members
        form = CounterRedeemForm(request.POST, members=members, goods=goods)
        if form.is_valid():
            member = Member.objects.select_related("home_org").get(pk=form.cleaned_data["member"])
            done, _status = _redeem(request, org, form, member, member_code=None, member_field="member")
            if done is not None:
                return done
        status = 422 if form.errors else 200
    else:
        form = CounterRedeemForm(
            members=members,
            goods=goods,
            initial={"idempotency_key": new_idempotency_key(), "member": members[0][0] if len(members) == 1 else None},
        )
    context = {
        "org": org,
        "find": find,
        "q": q,
        "form": form,
        "card_form": card_form,
        "searched": bool(q),
    }
    return render(request, "goods/redeem.html", context, status=status)


def _redeemed(request: HttpRequest, redemption: Redemption, replayed: bool) -> HttpResponse:
    if replayed:
        messages.info(request, _("这一笔刚才已经办好了，没有重复兑换。"))
    else:
        messages.success(
            request,
            _("已兑换 %(goods)s × %(n)s。请把物品交给会员，然后点“交付物品”。")
            % {"goods": redemption.goods.name, "n": redemption.quantity},
        )
    return redirect(voucher_url(redemption.voucher_code))


def _redeem_by_card(request: HttpRequest, org: Org, form: CardRedeemForm) -> tuple[HttpResponse | None, int]:
    """A member of another community shows their card: the same access check as the API, with the card code."""
    data = form.cleaned_data
    member = Member.objects.select_related("home_org").filter(pk=data["card"]).first()
    if member is None:
        form.add_error("card", _("找不到这个会员号。请核对会员卡。"))
        return None, 404
    return _redeem(request, org, form, member, member_code=data["member_code"], member_field="card")


def _redeem(
    request: HttpRequest,
    org: Org,
    form: CounterRedeemForm | CardRedeemForm,
    member: Member,
    *,
    member_code: str | None,
    member_field: str,
) -> tuple[HttpResponse | None, int]:
    """Both counter forms: the API's access check (with the card code when one was typed), then the redemption.
    A refusal lands on the form's fields; the answer is the redirect to the voucher, or None and the status."""
    user = user_of(request)
    data = form.cleaned_data
    goods = Goods.objects.get(pk=data["goods"])
    try:
        access_redeem(user, member=member, outlet=org, member_code=member_code)
        redemption, replayed = actions.do_redeem(
            user,
            member=member,
            goods=goods,
            quantity=data["quantity"],
            outlet=org,
            idempotency_key=data["idempotency_key"],
        )
    except ApiError as exc:
        add_form_error(form, exc, {"member_id": member_field, "goods_id": "goods", "stock": "quantity"})
        return None, exc.status
    return _redeemed(request, redemption, replayed), 302


# Checking a voucher and handing over ------------------------------------------------------------------


# The session remembers the voucher this counter just handed over, for the one page that follows (PRG).
JUST_HANDED = "goods.just_handed_over"


def _voucher_context(user: User, redemption: Redemption) -> dict[str, Any]:
    return {
        "r": redemption,
        "member_name": NameShield(user).member(redemption.member),
        "used": redemption.status != VoucherStatus.ISSUED,
        "grouped": grouped_code(redemption.voucher_code),
    }


@page("workbench")
def voucher_check(request: HttpRequest) -> HttpResponse:
    """Type the code or scan the QR code: what the voucher is for, and whether it was used."""
    user = user_of(request)
    require_manager(user)
    form = VoucherForm(request.GET if "code" in request.GET else None)
    context: dict[str, Any] = {"form": form}
    status = 200
    just_handed = request.session.pop(JUST_HANDED, None)
    if form.is_bound:
        if form.is_valid():
            try:
                redemption = access_redemption(user, voucher_code=form.cleaned_data["code"], manage=True)
            except NotFound:
                form.add_error("code", _("找不到这张兑换券。请核对兑换码，或请会员打开手机上的兑换券再扫一次。"))
                status = 404
            except Forbidden:
                form.add_error("code", _("这张兑换券不是在您管辖的网点兑换的，不能在这里领取。"))
                status = 403
            else:
                context.update(_voucher_context(user, redemption))
                # Right after this counter's hand-over, the success is the last word, not a red "already used".
                context["just_handed"] = (
                    just_handed == redemption.voucher_code and redemption.status == VoucherStatus.HANDED_OVER
                )
        else:
            status = 422
    return render(request, "goods/voucher.html", context, status=status)


@require_POST
@page("workbench")
def hand_over(request: HttpRequest, code: str) -> HttpResponse:
    """Hand the goods over. A voucher works once: a second hand-over is refused with when it was used."""
    user = user_of(request)
    redemption = access_redemption(user, voucher_code=clean_voucher_code(code), manage=True)
    try:
        redemption = actions.do_hand_over(user, redemption)
    except Conflict as exc:
        fresh = access_redemption(user, voucher_code=redemption.voucher_code, manage=True)
        context = {"form": VoucherForm(initial={"code": grouped_code(fresh.voucher_code)}), "refusal": explain(exc)}
        context.update(_voucher_context(user, fresh))
        return render(request, "goods/voucher.html", context, status=409)
    messages.success(
        request,
        _("已交付：%(goods)s × %(n)s。这张兑换券已经用掉了。")
        % {"goods": redemption.goods.name, "n": redemption.quantity},
    )
    request.session[JUST_HANDED] = redemption.voucher_code
    return redirect(voucher_url(redemption.voucher_code))


# The member's side --------------------------------------------------------------------------------------


def _member_goods_choices(user: User, member: Member) -> list[Any]:
    """In-stock goods of the member's bank, grouped by outlet, the outlets of their own community first."""
    home = member.home_org
    near = home.parent.path if home.kind == OrgKind.OUTLET and home.parent is not None else home.path
    goods = list(
        visible_goods(user)
        .filter(stock__gt=0, active=True)
        .select_related("outlet")
        .annotate(
            far=Case(When(outlet__path__startswith=near, then=Value(0)), default=Value(1), output_field=IntegerField())
        )
        .order_by("far", "outlet__path", "name", "pk")[:300]
    )
    groups: dict[int, tuple[str, list[tuple[int, str]]]] = {}
    for g in goods:
        label = str(
            _("%(name)s：每件 %(price)s（还有 %(stock)s 件）")
            % {"name": g.name, "price": hours(g.price_minutes), "stock": g.stock}
        )
        groups.setdefault(g.outlet_id, (g.outlet.name, []))[1].append((g.pk, label))
    return list(groups.values())


@page("member")
def my_goods(request: HttpRequest) -> HttpResponse:
    """换物品: choose goods and redeem them from the 可兑换物品 time; the voucher comes next."""
    user = user_of(request)
    member = who(request).member
    assert member is not None
    choices = _member_goods_choices(user, member)
    if request.method == "POST":
        form = MemberRedeemForm(request.POST, goods=choices)
        if form.is_valid():
            data = form.cleaned_data
            goods = visible_goods(user).select_related("outlet").get(pk=data["goods"])
            try:
                redemption, replayed = actions.do_redeem(
                    user,
                    member=member,
                    goods=goods,
                    quantity=data["quantity"],
                    outlet=goods.outlet,
                    idempotency_key=data["idempotency_key"],
                )
            except ApiError as exc:
                add_form_error(form, exc, {"goods_id": "goods", "stock": "quantity"})
            else:
                if replayed:
                    messages.info(request, _("这一笔刚才已经办好了，没有重复兑换。"))
                else:
                    messages.success(
                        request,
                        _("换好了！请带上这张兑换券，到%(outlet)s领取。") % {"outlet": goods.outlet.name},
                    )
                return redirect("web:my_voucher", redemption_id=redemption.pk)
    else:
        form = MemberRedeemForm(goods=choices, initial={"idempotency_key": new_idempotency_key()})
    waiting = Redemption.objects.filter(member=member, status=VoucherStatus.ISSUED).count()
    context = {"form": form, "balance": goods_minutes(member), "has_goods": bool(choices), "waiting": waiting}
    return render(request, "goods/my_goods.html", context, status=422 if form.errors else 200)


@page("member")
def my_vouchers(request: HttpRequest) -> HttpResponse:
    member = who(request).member
    assert member is not None
    issued_first = Case(When(status=VoucherStatus.ISSUED, then=Value(0)), default=Value(1), output_field=IntegerField())
    qs = (
        Redemption.objects.filter(member=member)
        .select_related("goods", "outlet")
        .annotate(issued_first=issued_first)
        .order_by("issued_first", "-pk")
    )
    rows = Paginator(qs, 20).get_page(request.GET.get("page"))
    return render(request, "goods/my_vouchers.html", {"rows": rows})


@page("member")
def my_voucher(request: HttpRequest, redemption_id: int) -> HttpResponse:
    """The voucher: a large QR code to show at the outlet (or print), and the code to read out."""
    user = user_of(request)
    member = who(request).member
    assert member is not None
    redemption = access_redemption(user, redemption_id=redemption_id)
    if redemption.member_id != member.pk:
        raise Forbidden(_("您无权查看这张兑换券。"), code="outside_subtree")
    used = redemption.status != VoucherStatus.ISSUED
    context = {
        "r": redemption,
        "used": used,
        "grouped": grouped_code(redemption.voucher_code),
        "qr": "" if used else voucher_svg(redemption.voucher_code, str(_("兑换券二维码"))),
        "back": safe_next(request, reverse("web:my_vouchers")),
    }
    return render(request, "goods/my_voucher.html", context)


# The member card (proof of presence at an outlet) ----------------------------------------------------------


@page("member")
def my_card(request: HttpRequest) -> HttpResponse:
    """我的会员卡: the member's card code and their linked relatives' (to print a paper card for an elder).
    Staff of another community's outlet ask for it before redeeming from the member's time."""
    person = who(request)
    assert person.member is not None
    people = [person.member]
    if not recently_reset(person.user):  # a login reset lately shows only its own card (orgs.access.RESET_HOLD)
        people += [link.relative for link in person.relatives]
    cards = [
        {"member": m, "grouped": grouped_code(actions.card_code(access_card_code(person.user, m.pk))), "mine": n == 0}
        for n, m in enumerate(people)
    ]
    return render(request, "goods/my_card.html", {"cards": cards})


@require_POST
@page("member")
def reissue_card(request: HttpRequest, member_id: int) -> HttpResponse:
    """A new code for a lost card, or after the card was locked by wrong codes. The old code stops working."""
    user = user_of(request)
    actions.do_reissue_card(user, access_card_code(user, member_id))
    messages.success(request, _("已经换了新卡码。旧卡码不能再用了，请重新打印会员卡。"))
    return redirect("web:my_card")


@never_cache
@page("workbench")
def staff_member_card(request: HttpRequest, member_id: int) -> HttpResponse:
    """A paper member card for a member without a phone or a relative online: staff of the member's home
    subtree print it. Printing issues a new code (the old one stops working), and is audited."""
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    if member.status != MemberStatus.ACTIVE:
        raise Conflict(_("会员不是正常状态，不能办理。"), code="member_not_active")
    if request.method != "POST":
        return render(request, "goods/staff_card.html", {"member": member})
    if request.POST.get("unlock"):
        # Another outlet's staff typed wrong codes: their lock on the card ends, the printed code stays.
        actions.do_unlock_card(user, member)
        messages.success(request, _("会员卡已解锁，卡码不变。"))
        return redirect("web:staff_member_card", member_id=member.pk)
    code = actions.do_reissue_card(user, member, printed_by_staff=True)
    card = {"member": member, "grouped": grouped_code(code), "mine": True}
    return render(request, "goods/my_card.html", {"cards": [card], "printed_by_staff": True})
