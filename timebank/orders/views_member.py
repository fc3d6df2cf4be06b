"""A member's own pages: the home page (everyone's first page, which sends each to their own workspace), their time
(balance and statement), giving time away."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import MenuEntry, ServiceItem
from timebank.ledger.actions import do_transfer
from timebank.ledger.models import Account, AccountKind, Leg
from timebank.ledger.statement_words import balance_of
from timebank.lib.errors import ApiError
from timebank.members.models import Member, MemberStatus
from timebank.members.person import Who, who
from timebank.members.views import about
from timebank.orders.access import pool_orders
from timebank.orders.core_services import EMERGENCY_ITEM, core_services_first
from timebank.orders.forms import TransferForm
from timebank.orders.models import Order
from timebank.orgs.models import Rules
from timebank.orgs.scope import is_workbench_user, user_of
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, page


def care_people(person: Who) -> list[Member]:
    """Whom this member may order services for: themselves (a recipient) and their linked family."""
    people: list[Member] = []
    if person.member is not None and person.member.is_recipient:
        people.append(person.member)
    people += [link.relative for link in person.relatives]
    return people


def service_items(bank_id: int, home_org_id: int) -> list[ServiceItem]:
    """The community's published menu (制单) when it has one, otherwise the bank's whole catalogue."""
    items = ServiceItem.objects.filter(head_office_id=bank_id, active=True)
    menu = MenuEntry.objects.filter(org_id=home_org_id, active=True).values_list("item_id", flat=True)
    if MenuEntry.objects.filter(org_id=home_org_id, active=True).exists():
        items = items.filter(pk__in=menu)
    return list(items.order_by("tier", "name"))


def multipliers(bank_id: int) -> dict[str, Any]:
    return Rules.objects.values_list("multipliers", flat=True).get(head_office_id=bank_id)


def balances(member: Member) -> dict[str, int]:
    rows = dict(Account.objects.filter(member=member).values_list("kind", "balance_minutes"))
    return {k: rows.get(k, 0) for k in (AccountKind.EARNED, AccountKind.GOODS, AccountKind.RESERVE)}


@page("member")
def member_home(request: HttpRequest) -> HttpResponse:
    person = who(request)
    member = person.member
    assert member is not None
    people = care_people(person)
    context: dict[str, Any] = {
        "person": person,
        "member": member,
        "pending": member.status == MemberStatus.PENDING,
        "people": people,
        "balance_total": sum(balances(member).values()),
    }
    if people:
        # pick_item sends a relative back here with ?for=<one of their people>; anyone else means the first.
        chosen = request.GET.get("for")
        first = next((p for p in people if chosen and str(p.pk) == chosen), people[0])
        context["for_member"] = first
        context["services"] = core_services_first(service_items(member.bank_id, first.home_org_id), first)
        context["emergency_item"] = EMERGENCY_ITEM
        context["multipliers"] = multipliers(member.bank_id)
        context["coming"] = list(
            Order.objects.open()
            .filter(recipient__in=people)
            .select_related("service_item", "volunteer", "recipient")
            .order_by("scheduled_start")[:5]
        )
    if member.is_volunteer:
        user = user_of(request)
        context["my_task_count"] = Order.objects.tasks().filter(volunteer=member).count()
        context["pool_count"] = pool_orders(user).count()
    return render(request, "orders/member_home.html", context)


@page("member")
def my_time(request: HttpRequest) -> HttpResponse:
    """My time, in three parts, and every change to it (newest first)."""
    member = who(request).member
    assert member is not None
    legs = Leg.objects.filter(account__member=member).select_related("transaction", "account").order_by("-pk")
    statement = Paginator(legs, 30).get_page(request.GET.get("page"))
    return render(
        request,
        "orders/my_time.html",
        {
            "member": member,
            "balance": balance_of(member.pk),
            "statement": statement,
            "kind_labels": dict(Account._meta.get_field("kind").choices or []),
        },
    )


@page("member")
def give(request: HttpRequest) -> HttpResponse:
    """Give time to a linked relative, or donate it to the bank's pool for people in need."""
    person = who(request)
    member = person.member
    assert member is not None
    relatives = [
        (link.relative_id, str(_("%(name)s（%(relation)s）") % {"name": link.relative.name, "relation": link.relation}))
        for link in person.relatives
    ]
    which = request.POST.get("kind", "")
    forms: dict[str, TransferForm] = {
        "relative": TransferForm(
            request.POST if which == "relative" else None,
            relatives=relatives,
            initial={"idempotency_key": new_idempotency_key(), "to_member": request.GET.get("to")},
            prefix="relative",
        ),
        "donation": TransferForm(
            request.POST if which == "donation" else None,
            initial={"idempotency_key": new_idempotency_key()},
            prefix="donation",
        ),
    }
    if request.method == "POST" and which in forms:
        form = forms[which]
        if form.is_valid():
            data = form.cleaned_data
            to_member = None
            if which == "relative":
                to_member = next(
                    (link.relative for link in person.relatives if link.relative_id == data["to_member"]), None
                )
            try:
                _tx, replayed = do_transfer(
                    user_of(request),
                    from_member=member,
                    to_member=to_member,
                    minutes=data["total_minutes"],
                    kind=which,
                    memo=data["memo"],
                    idempotency_key=data["idempotency_key"],
                )
            except ApiError as exc:
                add_form_error(form, exc, {"to_member_id": "to_member", "minutes": "hours"})
            else:
                if replayed:
                    messages.info(request, _("这一笔刚才已经办好了，没有重复送出。"))
                elif to_member is not None:
                    messages.success(request, _("已经送给%(name)s了。") % {"name": to_member.name})
                else:
                    messages.success(request, _("谢谢您！时间已经捐给爱心池，会用来帮助有困难的老人。"))
                return redirect("web:my_time")
    parts = balances(member)
    status = 422 if any(f.errors for f in forms.values()) else 200
    return render(
        request,
        "orders/give.html",
        {
            "member": member,
            "relative_form": forms["relative"] if relatives else None,
            "donation_form": forms["donation"],
            "spendable": parts[AccountKind.EARNED] + parts[AccountKind.RESERVE],
        },
        status=status,
    )


@page("public")
def home(request: HttpRequest) -> HttpResponse:
    """Visitors read what the time bank is; everyone else goes to their own workspace."""
    if not request.user.is_authenticated:
        return about(request)
    person = who(request)
    if person.member is not None:
        from timebank.orders.views_member import member_home

        return member_home(request)
    if person.user.role == "operator":
        return redirect("web:hotline")
    if is_workbench_user(person.user):
        return redirect("web:staff_home")
    return render(request, "orders/other_home.html", {"person": person})
