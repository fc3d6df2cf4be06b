"""A flush empties the whole database even where a trigger writes another table on DELETE.

`members_member`'s triggers keep `members_dailymembercount` (migration members/0011). PostgreSQL's flush is one
TRUNCATE, which fires no row trigger. SQLite's is a DELETE per table, in no fixed order (the table names come out
of a set): when the counts' table was emptied before the members', each deleted active member's trigger wrote a
count row back, pointing at a bank deleted in the same flush, and the flush failed at COMMIT (FOREIGN KEY
constraint failed), leaving every row in place for the next test (the browser tests, TransactionTestCase)."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection

from tests.conftest import build_world
from timebank.members.models import DailyMemberCount, Member
from timebank.orgs.models import Org

COUNTS = DailyMemberCount._meta.db_table
MEMBERS = Member._meta.db_table


def _rows() -> tuple[int, int, int]:
    return Member.objects.count(), DailyMemberCount.objects.count(), Org.objects.count()


def test_a_flush_empties_the_counts_in_any_table_order(transactional_db: None) -> None:
    build_world()
    assert DailyMemberCount.objects.exists()  # the triggers counted the world's active members
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    # The order that failed on SQLite: the counts' table first, the members' table last.
    worst = [COUNTS, *sorted(t for t in tables if t not in (COUNTS, MEMBERS)), MEMBERS]
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), worst))
    assert _rows() == (0, 0, 0)


def test_the_flush_command_empties_everything(transactional_db: None) -> None:
    build_world()
    call_command("flush", interactive=False, verbosity=0)
    assert _rows() == (0, 0, 0)
