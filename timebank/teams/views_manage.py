"""Looking after a team from the pages: editing it (`PATCH /api/v1/teams/{id}`: staff of the team's org subtree,
not its leader) and removing a member (`POST /api/v1/teams/{id}/members/{member_id}/remove`: the team's managers,
leaders included). Each is guarded by its endpoint's access functions and calls its action; a double submit of
one rendered form acts once."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError
from timebank.members.forms_staff import KeyedForm
from timebank.ops.idempotency import form_once, submit_once
from timebank.orgs.scope import user_of
from timebank.teams import actions
from timebank.teams.access import access_member_for_team, access_team, access_team_as_staff
from timebank.teams.models import TeamKind
from timebank.web.views.common import explain, page


class TeamEditForm(KeyedForm):
    """The team's fields as `PATCH /api/v1/teams/{id}` names them: `name`, `kind`, `description`, `active`."""

    name = forms.CharField(label=_("队伍名称"), max_length=100)
    kind = forms.ChoiceField(label=_("队伍类型"), choices=TeamKind.choices)
    description = forms.CharField(
        label=_("介绍"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )
    active = forms.BooleanField(
        label=_("队伍在活动中"), required=False, help_text=_("不再活动的队伍取消勾选：队伍和记录都保留。")
    )


@never_cache
@page("login")
def team_edit(request: HttpRequest, team_id: int) -> HttpResponse:
    """Rename a team, change its kind or description, retire it or bring it back (access_team_as_staff)."""
    user = user_of(request)
    team = access_team_as_staff(user, team_id)
    initial: dict[str, Any] = {
        "name": team.name,
        "kind": team.kind,
        "description": team.description,
        "active": team.active,
    }
    form = TeamEditForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method != "POST":
        return render(request, "teams/team_edit.html", {"team": team, "form": form})
    return submit_once(
        request,
        form,
        "teams.update",
        lambda data: actions.do_update_team(
            user,
            team,
            name=data["name"],
            kind=data["kind"],
            description=data["description"],
            active=data["active"],
        ),
        success=_("已保存。"),
        done=lambda _kept: redirect("teams:team", team.pk),
        again=lambda status: render(request, "teams/team_edit.html", {"team": team, "form": form}, status=status),
    )


@require_POST
@page("login")
def team_remove_member(request: HttpRequest, team_id: int, member_id: int) -> HttpResponse:
    """Take a member off the team (their past attendance stays). A refusal (no longer in the team) is shown on
    the team's page."""
    user = user_of(request)
    team = access_team(user, team_id, manage=True)
    member = access_member_for_team(user, team, member_id)
    try:
        with form_once(request, request.POST.get("idempotency_key"), "teams.remove_member") as once:
            if once.replay is None:
                actions.do_remove_team_member(user, team, member)
                once.keep(str(member.pk))
    except ApiError as exc:
        messages.error(request, explain(exc))
    else:
        messages.success(request, _("%(name)s 已离开队伍。") % {"name": member.name})
    return redirect("teams:team", team.pk)
