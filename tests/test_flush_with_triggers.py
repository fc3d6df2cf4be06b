"""`manage.py flush` empties the whole database, in whatever order it empties the tables.

`members_member`'s triggers keep `members_dailymembercount` (migrations members/0011, 0012). PostgreSQL's flush is
one TRUNCATE, which fires no row trigger. SQLite's is a DELETE per table, in no fixed order (the table names come
out of a set). Before migration 0012, when the counts' table was emptied before the members', each deleted active
member's trigger wrote a row of -1s back, pointing at a bank deleted in the same flush, and the flush failed at
COMMIT (FOREIGN KEY constraint failed), leaving every row for the next test. Now a member is taken away from its
count row in place, and a missing row stays missing: Django's own flush, no workaround, empties everything. Real
deletes still keep the counts exact."""

from __future__ import annotations

import random
from collections.abc import Callable
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from tests.conftest import World, build_world
from timebank.members.counts import count_problems
from timebank.members.models import DailyMemberCount, Member
from timebank.orgs.models import Org

COUNTS = DailyMemberCount._meta.db_table
MEMBERS = Member._meta.db_table

ORDERS: dict[str, Callable[[list[str]], list[str]]] = {
    "the counts first, the members last": lambda tables: [
        COUNTS,
        *sorted(t for t in tables if t not in (COUNTS, MEMBERS)),
        MEMBERS,
    ],
    "the members first, the counts last": lambda tables: [
        MEMBERS,
        *sorted(t for t in tables if t not in (COUNTS, MEMBERS)),
        COUNTS,
    ],
    "shuffled": lambda tables: random.Random(17).sample(tables, len(tables)),
    "as Django lists them": lambda tables: tables,
}


def _rows() -> tuple[int, int, int]:
    return Member.objects.count(), DailyMemberCount.objects.count(), Org.objects.count()


@pytest.mark.parametrize("order", ORDERS)
def test_the_flush_command_empties_everything_in_any_table_order(transactional_db: None, order: str) -> None:
    build_world()
    assert DailyMemberCount.objects.exists()  # the triggers counted the world's active members
    introspection = type(connection.introspection)
    listed = introspection.django_table_names

    def in_this_order(self: object, *args: object, **kwargs: object) -> list[str]:
        return ORDERS[order](list(listed(self, *args, **kwargs)))  # type: ignore[arg-type]

    # The flush command names the tables through the introspection: the order given here is the order emptied.
    with mock.patch.object(introspection, "django_table_names", in_this_order):
        call_command("flush", interactive=False, verbosity=0)
    assert _rows() == (0, 0, 0)


def test_deleting_a_member_keeps_the_counts_exact(world: World) -> None:
    """The decrement in place: a real delete (and a deactivation) of an active member moves its count row, and a
    missing count row is not written back as a negative one."""
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    bank = world.bank.pk
    assert count_problems(bank) == []
    before = DailyMemberCount.objects.filter(bank_id=bank).count()
    # Raw SQL in a savepoint rolled back at the end: accounts and logins hang on the members (deferred foreign keys,
    # which the test's teardown checks).
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {MEMBERS} WHERE id = %s", [volunteer.pk])
        assert count_problems(bank) == []
        assert DailyMemberCount.objects.filter(bank_id=bank).count() == before
        # With the bank's count rows gone (drift verify reports), taking members away writes none back.
        DailyMemberCount.objects.filter(bank_id=bank).delete()
        Member.objects.filter(pk=world.members["recipient"].pk).update(status="suspended")
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {MEMBERS} WHERE id = %s", [neighbour.pk])
        assert not DailyMemberCount.objects.filter(bank_id=bank).exists()
        assert count_problems(bank)  # still drifted, not made worse: rebuild_summaries repairs it
        transaction.set_rollback(True)
