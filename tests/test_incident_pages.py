"""Issue 13: the incident pages (意外事件). Staff report an incident on /safety/incidents/ and work it from its page:
follow-ups, the responsibility decision, the insurance claim, closing and reopening. Each page asks the endpoint's
access function (safety/access.py) and calls its action; bad input is a 4xx with its reason and nothing written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.test import Client
from django.utils import timezone

from tests.conftest import World, web_client
from tests.test_trust_08_races import Call, fire, postgres_only
from timebank.safety import actions
from timebank.safety.models import IncidentDecision, IncidentFollowUp, IncidentReport


def when(hours_ago: int = 2) -> str:
    return (timezone.localtime() - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def report(client: Client, w: World, **extra: Any) -> Any:
    body = {
        "idempotency_key": "k" * 32,
        "recipient_id": str(w.members["recipient"].pk),
        "volunteer_id": str(w.members["volunteer"].pk),
        "occurred_at": when(),
        "place": "李大爷家",
        "what_happened": "扶老人起身时滑倒",
    }
    body.update(extra)
    return client.post("/safety/incidents/", body)


def made(w: World, *, injury: bool = False) -> IncidentReport:
    return actions.do_report_incident(
        w.users["staff"],
        order=None,
        volunteer=w.members["volunteer"],
        recipient=w.members["recipient"],
        occurred_at=timezone.now() - dt.timedelta(hours=1),
        what_happened="摔倒",
        injury=injury,
        injury_description="膝盖擦伤" if injury else "",
    )


def step(client: Client, incident: IncidentReport, name: str, key: str = "s" * 32, **body: Any) -> Any:
    return client.post(f"/safety/incidents/{incident.pk}/{name}/", {"idempotency_key": key, **body})


def test_staff_report_an_incident_once(world: World) -> None:
    client = web_client(world.users["staff"])
    page = client.get("/safety/incidents/")
    assert page.status_code == 200 and 'action="/safety/incidents/"' in page.content.decode()
    assert "/safety/incidents/" in client.get("/staff/").content.decode()  # from the staff home
    resp = report(client, world)
    incident = IncidentReport.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/safety/incidents/{incident.pk}/"
    assert report(client, world).status_code == 302  # a double submit: the first one's answer
    assert IncidentReport.objects.count() == 1
    assert (incident.volunteer_id, incident.recipient_id, incident.org_id) == (
        world.members["volunteer"].pk,
        world.members["recipient"].pk,
        world.community.pk,
    )
    assert "扶老人起身时滑倒" in client.get("/safety/incidents/").content.decode()  # the list, with its link
    assert f"/safety/incidents/{incident.pk}/" in client.get("/safety/incidents/").content.decode()
    # The same report on a new form is refused as a duplicate.
    again = report(client, world, idempotency_key="j" * 32)
    assert again.status_code == 409 and "这份事件报告已经提交过" in again.content.decode()
    assert IncidentReport.objects.count() == 1


def test_bad_reports_show_every_error_and_write_nothing(world: World) -> None:
    client = web_client(world.users["staff"])
    resp = report(client, world, recipient_id="", volunteer_id="", what_happened="", occurred_at="昨天")
    html = resp.content.decode()
    assert resp.status_code == 422
    # All at once: no one named, no account of what happened, the time unreadable.
    assert "请写明订单，或涉及的志愿者或服务对象" in html and html.count('class="error"') >= 3
    cases: list[dict[str, Any]] = [
        {"recipient_id": "-3"},
        {"recipient_id": "99999999999999"},
        {"recipient_id": "abc"},
        {"occurred_at": when(24 * 400)},  # more than a year ago
        {"injury": "on", "injury_description": ""},  # an injury without its details
        {"injury_description": "擦伤"},  # details without an injury
        {"what_happened": "长" * 2001},
    ]
    for i, bad in enumerate(cases):
        resp = report(client, world, idempotency_key=f"bad{i}", **bad)
        assert resp.status_code == 422, (bad, resp.status_code)
    # Other banks' members, unknown members and orders.
    assert report(client, world, recipient_id=str(world.members["stranger"].pk), volunteer_id="").status_code == 403
    assert report(client, world, recipient_id="999999", volunteer_id="").status_code == 404
    assert report(client, world, order_id="999999").status_code == 404
    assert not IncidentReport.objects.exists()


def test_who_may_report(world: World) -> None:
    for persona in ("staff_next", "other_bank_staff", "other_bank_admin"):
        assert report(web_client(world.users[persona]), world).status_code == 403, persona
    for persona in ("volunteer", "recipient", "operator", "assessor"):
        assert report(web_client(world.users[persona]), world).status_code == 403, persona
        assert web_client(world.users[persona]).get("/safety/incidents/").status_code == 403, persona
    assert report(web_client(None), world).status_code == 302
    assert not IncidentReport.objects.exists()
    for persona in ("branch_admin", "head_office_admin"):
        assert report(web_client(world.users[persona]), world, idempotency_key=persona).status_code == 302, persona
        IncidentReport.objects.all().delete()


def test_follow_up_decide_claim_close_and_reopen(world: World) -> None:
    from timebank.safety.actions import do_add_insurance_policy

    incident = made(world, injury=True)
    policy = do_add_insurance_policy(
        None,
        world.members["volunteer"],
        insurer="人保",
        policy_number="PA-2026-001",
        starts_on=timezone.localdate() - dt.timedelta(days=30),
        ends_on=timezone.localdate() + dt.timedelta(days=300),
    )
    staff, admin = web_client(world.users["staff"]), web_client(world.users["branch_admin"])
    page = staff.get(f"/safety/incidents/{incident.pk}/").content.decode()
    for name in ("follow_up", "decision", "claim", "close"):
        assert f"/safety/incidents/{incident.pk}/{name}/" in page
    # A follow-up, once for a double submit; an empty one refused.
    assert step(staff, incident, "follow_up", note="已联系家属").status_code == 302
    assert step(staff, incident, "follow_up", note="已联系家属").status_code == 302
    assert IncidentFollowUp.objects.filter(incident=incident, kind="note").count() == 1
    assert step(staff, incident, "follow_up", "f2", note="").status_code == 422
    # Closing an injury without a decision is refused.
    closed = step(staff, incident, "close", "c1")
    assert closed.status_code == 409 and "先做责任认定" in closed.content.decode()
    # The decision; a change needs a reason.
    assert step(admin, incident, "decision", "d1", responsibility="third_party", note="路面湿滑").status_code == 302
    assert step(admin, incident, "decision", "d0", responsibility="nobody").status_code == 422
    change = step(admin, incident, "decision", "d2", responsibility="volunteer")
    assert change.status_code == 409 and "请写明更改理由" in change.content.decode()
    assert IncidentDecision.objects.filter(incident=incident).count() == 1
    # The claim: filed with a party's policy and a number, then paid.
    no_number = step(staff, incident, "claim", "k1", claim_status="filed", policy_id=str(policy.pk))
    assert no_number.status_code == 422 and "理赔编号" in no_number.content.decode()
    wrong_policy = step(
        staff, incident, "claim", "k2", claim_status="filed", policy_id="999999", claim_number="C-2026-1"
    )
    assert wrong_policy.status_code == 422  # not one of the parties' policies
    assert (
        step(
            staff, incident, "claim", "k3", claim_status="filed", policy_id=str(policy.pk), claim_number="C-2026-1"
        ).status_code
        == 302
    )
    pending = step(staff, incident, "close", "c2")
    assert pending.status_code == 409 and "理赔还在处理中" in pending.content.decode()
    assert step(staff, incident, "claim", "k4", claim_status="paid").status_code == 302
    incident.refresh_from_db()
    assert (incident.claim_status, incident.claim_policy_id, incident.claim_number) == ("paid", policy.pk, "C-2026-1")
    # Close, then reopen with a reason.
    assert step(staff, incident, "close", "c3", note="已赔付").status_code == 302
    incident.refresh_from_db()
    assert incident.status == "closed"
    after = step(staff, incident, "follow_up", "f3", note="补充")
    assert after.status_code == 409 and "未能办理" in after.content.decode()  # its form is not shown: at the top
    assert step(staff, incident, "reopen", "r1", reason="").status_code == 422
    assert step(staff, incident, "reopen", "r2", reason="家属有新情况").status_code == 302
    incident.refresh_from_db()
    assert incident.status == "open"
    again = step(staff, incident, "reopen", "r3", reason="再开")
    assert again.status_code == 409 and "事件还在处理中" in again.content.decode()
    assert step(staff, incident, "nonsense", "n1").status_code == 404


def test_only_staff_of_the_subtree_work_an_incident(world: World) -> None:
    incident = made(world)
    # The parties may read (the API lets them) but not act; others may not even open it.
    for persona in ("volunteer", "recipient", "relative"):
        client = web_client(world.users[persona])
        assert step(client, incident, "follow_up", note="我来写").status_code == 403, persona
    for persona in ("staff_next", "other_bank_staff", "other_bank_admin", "operator", "stranger"):
        client = web_client(world.users[persona])
        assert client.get(f"/safety/incidents/{incident.pk}/").status_code == 403, persona
        for name, body in (("follow_up", {"note": "x"}), ("close", {}), ("reopen", {"reason": "x"})):
            assert step(client, incident, name, **body).status_code == 403, (persona, name)
    admin = web_client(world.users["head_office_admin"])
    assert admin.get("/safety/incidents/999999/").status_code == 404
    assert step(admin, incident, "follow_up", note="总行").status_code == 302
    assert admin.get(f"/safety/incidents/{incident.pk}/close/").status_code == 405
    incident.refresh_from_db()
    assert incident.status == "open"
    assert IncidentFollowUp.objects.filter(incident=incident, kind="note").count() == 1


@postgres_only
def test_the_report_form_sent_ten_times_at_once_makes_one_incident(world: World) -> None:
    body = {
        "idempotency_key": "z" * 32,
        "recipient_id": str(world.members["recipient"].pk),
        "occurred_at": when(),
        "what_happened": "跌倒",
    }
    answers = fire(world, Call("staff", "/safety/incidents/", body, form=True), "plain")
    assert sorted(a.status for a in answers) == [302] * 10, [a.status for a in answers]
    assert IncidentReport.objects.count() == 1
