"""The one-screen entry of a day's paper sign-in sheet (issue 13 "Paper mode"): the day's orders still waiting
for a step, each with the sheet's three columns (接单, 签到, 签退: HH:MM on that day); one submit enters every
filled row through the paper-mode actions (orders.sheets.do_enter_sheet), all or nothing. Staff and operators
of a subtree, as the staff order list; printed by exports/sheets.py, whose QR code opens this page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.lib.errors import ApiError, NotFound
from timebank.lib.masking import mask_name
from timebank.ops.idempotency import form_once
from timebank.orders.models import Order
from timebank.orders.sheets import (
    COLUMNS,
    MAX_ROWS,
    OPEN_STEP_STATES,
    SheetRefused,
    SheetRow,
    at_on,
    check_sheet_reader,
    day_orders,
    do_enter_sheet,
    parse_day,
)
from timebank.orgs.models import Org
from timebank.orgs.scope import user_of
from timebank.web.forms import Form, new_idempotency_key
from timebank.web.views.common import add_form_error, explain, page

COLUMN_TITLES = {"accept": _("接单时间"), "check_in": _("签到时间"), "check_out": _("签退时间")}


class SheetForm(Form):
    """The hidden key, and per order the three times as written on the sheet (blank: not on the sheet)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, orders: list[Order], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)
        self.orders = orders
        for order in orders:
            for _action, column in COLUMNS:
                self.fields[f"o{order.pk}_{column}"] = forms.TimeField(
                    label=COLUMN_TITLES[column],
                    required=False,
                    input_formats=["%H:%M"],
                    widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                )

    def rows(self, day: dt.date) -> list[SheetRow]:
        """The filled rows, each with its times in the steps' order."""
        rows = []
        for order in self.orders:
            times = tuple(
                (action, at_on(day, hour))
                for action, column in COLUMNS
                if (hour := self.cleaned_data.get(f"o{order.pk}_{column}")) is not None
            )
            if times:
                rows.append(SheetRow(order, times))
        return rows


def _posted_orders(request: HttpRequest, day: dt.date, org: Org | None) -> list[Order]:
    """The rows the submitted page showed (its hidden `order` ids), each one of the caller's orders of that day
    (else 404: another subtree's or another day's order is not on this sheet)."""
    raw = request.POST.getlist("order")
    if len(raw) > MAX_ROWS or not all(r.isdigit() and len(r) <= 18 for r in raw):
        raise NotFound(_("签到表上没有这个订单。"), code="order_not_found")
    ids = {int(r) for r in raw}
    orders = list(day_orders(user_of(request), day, org).filter(pk__in=ids))
    if len(orders) != len(ids):
        raise NotFound(_("签到表上没有这个订单。"), code="order_not_found")
    return orders


def _render(request: HttpRequest, day: dt.date, org: Org | None, form: SheetForm, status: int = 200) -> HttpResponse:
    rows = []
    for order in form.orders:
        cells = [form[f"o{order.pk}_{column}"] for _action, column in COLUMNS]
        order.masked_recipient = mask_name(order.recipient.name)  # type: ignore[attr-defined]
        rows.append({"key": order.pk, "order": order, "cells": cells})
    query = f"?org={org.pk}" if org else ""
    return render(
        request,
        "orders/staff/sheet.html",
        {
            "day": day,
            "org": org,
            "form": form,
            "rows": rows,
            "pdf_url": reverse("exports:day_sheet", args=[day.isoformat()]) + query,
            "previous": (day - dt.timedelta(days=1)).isoformat(),
            "next": (day + dt.timedelta(days=1)).isoformat(),
            "today": clock.localdate().isoformat(),
            "query": query,
        },
        status=status,
    )


@page("workbench")
def staff_order_sheet(request: HttpRequest, day: str) -> HttpResponse:
    """GET: the day's orders still waiting for a step. POST: enter the filled sheet, once (the hidden key); a
    refused row: nothing written, 422, the refusal beside that row and every typed time kept."""
    user = user_of(request)
    the_day = parse_day(day)
    org = check_sheet_reader(user, request.GET.get("org", ""))
    if request.method != "POST":
        orders = list(day_orders(user, the_day, org).filter(state__in=OPEN_STEP_STATES))
        return _render(request, the_day, org, SheetForm(orders=orders))
    form = SheetForm(request.POST, orders=_posted_orders(request, the_day, org))
    if form.is_valid():
        rows = form.rows(the_day)
        if not rows:
            form.add_error(None, _("签到表上没有填写任何时间。"))
        else:
            try:
                with form_once(request, form.cleaned_data["idempotency_key"], f"orders.sheet.{the_day}") as once:
                    if once.replay is None:
                        done = do_enter_sheet(user, rows)
                        once.keep(",".join(str(o.pk) for o in done))
            except SheetRefused as refused:
                for order_id, (action, exc) in refused.errors.items():
                    column = dict(COLUMNS).get(action, "accept")
                    form.add_error(f"o{order_id}_{column}", explain(exc))
            except ApiError as exc:
                add_form_error(form, exc)
    if form.errors:
        return _render(request, the_day, org, form, status=422)
    messages.success(request, _("签到表已录入，每个订单的记录里写明“代为操作（纸质签到表）”。"))
    return redirect(reverse("web:staff_order_sheet", args=[the_day.isoformat()]) + (f"?org={org.pk}" if org else ""))
