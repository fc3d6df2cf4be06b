"""A page form's hidden key is bound to the form it was rendered for: the same key sent to another object's form
(same action, another path) is refused as a reused key, never answered with a silent "done" that did nothing."""

from __future__ import annotations

import re

from tests.conftest import World, web_client
from timebank.members.models import Certificate


def _key(html: str, action: str) -> str:
    form = html[html.index(f'action="{action}"') :]
    match = re.search(r'name="idempotency_key" value="([0-9a-f-]+)"', form)
    assert match, f"no form key for {action}"
    return match.group(1)


def test_a_form_key_reused_on_another_members_form_is_refused_and_writes_nothing(world: World) -> None:
    staff = web_client(world.users["staff"])
    first, second = world.members["volunteer"], world.members["recipient"]
    body = {"kind": "first_aid", "issuer": "台儿庄区红十字会", "valid_from": "2025-06-01", "valid_until": ""}
    action = f"/staff/members/{first.pk}/certificates/"
    key = _key(staff.get(f"/staff/members/{first.pk}/safety/").content.decode(), action)
    assert staff.post(action, {**body, "idempotency_key": key}).status_code == 302
    # A double click on the same form is still one certificate and no error.
    assert staff.post(action, {**body, "idempotency_key": key}).status_code == 302
    assert Certificate.objects.filter(member=first).count() == 1

    other = f"/staff/members/{second.pk}/certificates/"
    response = staff.post(other, {**body, "idempotency_key": key})
    assert response.status_code in (409, 422)  # the form again, with the refusal beside it
    assert "幂等键已用于另一个不同的请求" in response.content.decode()
    assert not Certificate.objects.filter(member=second).exists()
    # A fresh key on that form works.
    fresh = _key(staff.get(f"/staff/members/{second.pk}/safety/").content.decode(), other)
    assert staff.post(other, {**body, "idempotency_key": fresh}).status_code == 302
    assert Certificate.objects.filter(member=second).count() == 1


def test_a_form_restored_by_back_and_changed_is_refused_not_answered_done(world: World) -> None:
    """Back restores the page with its key; a changed form sent again under it wrote nothing and said "done"."""
    staff = web_client(world.users["staff"])
    member = world.members["volunteer"]
    body = {"kind": "first_aid", "issuer": "台儿庄区红十字会", "valid_from": "2025-06-01", "valid_until": ""}
    action = f"/staff/members/{member.pk}/certificates/"
    key = _key(staff.get(f"/staff/members/{member.pk}/safety/").content.decode(), action)
    assert staff.post(action, {**body, "idempotency_key": key}).status_code == 302
    changed = staff.post(action, {**body, "kind": "nursing", "idempotency_key": key})
    assert changed.status_code in (409, 422)
    assert "幂等键已用于另一个不同的请求" in changed.content.decode()
    assert list(Certificate.objects.filter(member=member).values_list("kind", flat=True)) == ["first_aid"]
    # The same form sent again unchanged (a double click, a resend) is still answered as the first.
    assert staff.post(action, {**body, "idempotency_key": key}).status_code == 302
    assert Certificate.objects.filter(member=member).count() == 1
