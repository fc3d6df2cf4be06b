"""One way to tell other apps that something happened (issue 15): the event registry of `timebank.lib.events`,
the subscriptions the apps register from their `AppConfig.ready()`, and the messages of teams and evaluation
queued inside the action's transaction, like the orders' (a crash after the commit can no longer lose them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from tests.conftest import World
from timebank.audit.models import ChainHead
from timebank.catalogue.actions import do_create_service_item
from timebank.evaluation import actions as evaluation
from timebank.lib import events
from timebank.lib.events import publish, subscribe, subscribers
from timebank.members.events import MemberAnonymised, MemberRegistered, MemberStatusChanged
from timebank.notify.models import Notification
from timebank.orders.events import OrderTransitioned
from timebank.orgs.events import BankOpened, PasswordReset, RulesChanged
from timebank.teams import actions as teams
from timebank.teams.models import Activity

# --- the registry ---


@dataclass(frozen=True)
class Happened:
    what: str


@dataclass(frozen=True)
class HappenedToo(Happened):
    pass


@pytest.fixture
def registry() -> Iterator[None]:
    """The test's own event types, forgotten afterwards (the apps' subscriptions stay as they are)."""
    yield
    for kind in (Happened, HappenedToo):
        events._subscribers.pop(kind, None)


class Boom(Exception):
    pass


def test_a_subscriber_is_registered_once(registry: None) -> None:
    calls: list[str] = []

    def handler(event: Happened) -> None:
        calls.append(event.what)

    subscribe(Happened)(handler)
    subscribe(Happened)(handler)  # ready() may run twice under some test runners
    assert subscribers(Happened) == [handler]
    publish(Happened("x"))
    assert calls == ["x"]


def test_subscribers_run_in_subscription_order_and_their_answers_are_flattened(registry: None) -> None:
    calls: list[str] = []

    @subscribe(Happened)
    def first(event: Happened) -> list[str]:
        calls.append("first")
        return [f"{event.what}-1", f"{event.what}-2"]

    @subscribe(Happened)
    def silent(event: Happened) -> None:
        calls.append("silent")  # answers nothing: adds nothing

    @subscribe(Happened)
    def last(event: Happened) -> tuple[str, ...]:
        calls.append("last")
        return (f"{event.what}-3",)

    assert publish(Happened("a")) == ["a-1", "a-2", "a-3"]
    assert calls == ["first", "silent", "last"]
    # Only the exact type is delivered: a subclass has its own subscribers (none here).
    assert publish(HappenedToo("b")) == []
    assert calls == ["first", "silent", "last"]
    assert publish(object()) == []  # nobody listens: nothing happens


@pytest.mark.django_db
def test_a_failing_subscriber_propagates_and_rolls_back_the_publishing_action(registry: None) -> None:
    @subscribe(Happened)
    def writes(event: Happened) -> None:
        ChainHead.objects.create(scope=f"{event.what}:subscriber")

    @subscribe(Happened)
    def fails(event: Happened) -> None:
        raise Boom(event.what)

    with pytest.raises(Boom), transaction.atomic():
        ChainHead.objects.create(scope="event:action")
        publish(Happened("event"))
    assert not ChainHead.objects.filter(scope__startswith="event:").exists()


def test_the_apps_subscribe_from_their_ready() -> None:
    """Who listens to what, registered when Django started (no publisher imports its subscribers)."""

    def where(kind: type) -> list[str]:
        return [f"{h.__module__}.{h.__name__}" for h in subscribers(kind)]

    assert where(OrderTransitioned) == ["timebank.notify.hooks.on_order_transition"]
    assert where(BankOpened) == ["timebank.ledger.subscribers.on_bank_opened"]
    assert where(RulesChanged) == ["timebank.notices.subscribers.on_rules_changed"]
    assert where(PasswordReset) == ["timebank.notify.hooks.on_password_reset"]
    assert where(MemberRegistered) == ["timebank.ledger.subscribers.on_member_registered"]
    assert where(MemberStatusChanged) == ["timebank.teams.subscribers.on_member_status_changed"]
    assert sorted(where(MemberAnonymised)) == [
        "timebank.exports.subscribers.on_member_anonymised",
        "timebank.hotline.subscribers.on_member_anonymised",
    ]


# --- messages queued inside the action's transaction ---


def _activity(w: World) -> Activity:
    start = timezone.now() + dt.timedelta(hours=3)
    item = do_create_service_item(None, head_office=w.bank, name="健康讲座", category="health_talks", tier="ordinary")
    return teams.do_publish_activity(
        w.users["staff"],
        org=w.community,
        team=None,
        data=teams.ActivityInput(
            title="高血压健康讲座",
            service_item=item,
            place="顺河社区活动室",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=2),
            places=5,
        ),
    )


def _told(member_id: int, template: str) -> list[Notification]:
    return list(Notification.objects.filter(member_id=member_id, template=template, channel="outbox"))


def test_a_sign_up_rolled_back_leaves_no_message_and_a_committed_one_leaves_exactly_one(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    volunteer = world.members["volunteer"]
    activity = _activity(world)
    with pytest.raises(Boom), transaction.atomic():
        teams.do_sign_up(volunteer.user, activity, volunteer)
        assert len(_told(volunteer.pk, "activity.signed_up")) == 1  # written with the sign-up
        raise Boom  # the request dies before its transaction commits
    assert _told(volunteer.pk, "activity.signed_up") == []
    # No on-commit callback has to run for the message to exist: it committed with the sign-up. Only its
    # delivery waits for the commit.
    with django_capture_on_commit_callbacks(execute=False) as delivery:
        teams.do_sign_up(volunteer.user, activity, volunteer)
    (message,) = _told(volunteer.pk, "activity.signed_up")
    assert message.status == "pending" and len(delivery) == 1


def test_a_penalty_rolled_back_leaves_no_message_and_a_committed_one_leaves_exactly_one(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    volunteer = world.members["volunteer"]
    admin = world.users["branch_admin"]
    with pytest.raises(Boom), transaction.atomic():
        evaluation.do_impose_penalty(admin, volunteer, kind="warning", reason="未到场")
        raise Boom
    assert _told(volunteer.pk, "penalty.imposed") == []
    with django_capture_on_commit_callbacks(execute=False) as delivery:
        evaluation.do_impose_penalty(admin, volunteer, kind="warning", reason="未到场")
    (message,) = _told(volunteer.pk, "penalty.imposed")
    assert message.status == "pending" and len(delivery) == 1


@pytest.mark.django_db(transaction=True)
def test_committed_for_real_an_activity_message_is_there_once_and_a_rolled_back_one_never(world: World) -> None:
    """With real commits (the PostgreSQL pass runs it against the server): the message commits with the action."""
    volunteer = world.members["volunteer"]
    activity = _activity(world)
    with pytest.raises(Boom), transaction.atomic():
        teams.do_sign_up(volunteer.user, activity, volunteer)
        raise Boom
    assert _told(volunteer.pk, "activity.signed_up") == []
    teams.do_sign_up(volunteer.user, activity, volunteer)
    assert len(_told(volunteer.pk, "activity.signed_up")) == 1
