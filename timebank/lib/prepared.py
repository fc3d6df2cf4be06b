"""One row by its key, with the SQL Django compiled once: for the few reads every request of the service loop makes.

Building and compiling a queryset costs Django more CPU than running it, the more so the more columns it selects:
the order an action locks, with its org, service item, parties and their logins (138 columns), compiled in about
1 ms of CPU each time, read in a third of that. `OneByKey` compiles its query the first time on each database
connection alias and then only runs the SQL with the new keys, building the same model instances (related objects
included) as the queryset would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[int, ...]  # the position in `keys` of each parameter of the SQL
    model: type[Model]
    start: int  # the main model's columns in the row
    end: int
    init_list: list[str]
    populators: list[Any]  # django's RelatedPopulator: the select_related objects, built from each row
    converters: dict[int, tuple[list[Any], Any]]


class OneByKey(Generic[M]):
    """`query(*keys)` is a queryset of at most one row whose parameters are `keys` (filters that pick one row, and
    any select_related / select_for_update): `get(*keys)` answers that row's instance, or None."""

    def __init__(self, query: Callable[..., QuerySet[M]]) -> None:
        self.query = query
        self._compiled: dict[tuple[str, str], _Compiled | None] = {}

    def get(self, *keys: Any, using: str = "default") -> M | None:
        connection = connections[using]
        compiled = self._compiled.get((using, connection.vendor), _MISSING)
        if compiled is _MISSING:
            compiled = self._compile(keys, using)
        if compiled is None:  # a query this cannot reuse: the ORM as usual
            return next(iter(self.query(*keys).using(using)), None)
        assert isinstance(compiled, _Compiled)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, tuple(keys[i] for i in compiled.order))
            rows = cursor.fetchall()
        if not rows:
            return None
        row = list(rows[0])
        for position, (converters, expression) in compiled.converters.items():
            value = row[position]
            for converter in converters:
                value = converter(value, expression, connection)
            row[position] = value
        obj = compiled.model.from_db(using, compiled.init_list, row[compiled.start : compiled.end])
        for populator in compiled.populators:
            populator.populate(row, obj)
        return obj  # type: ignore[return-value]

    def _compile(self, keys: tuple[Any, ...], using: str) -> _Compiled | None:
        queryset = self.query(*keys).using(using)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        compiled: _Compiled | None = None
        # Only a query whose parameters are the keys themselves (Django sorts a filter's keywords; not adapted, as
        # SQLite adapts a datetime), with nothing a plain model iteration would not do (annotations, extra columns).
        order = tuple(next((i for i, key in enumerate(keys) if key is param), -1) for param in params)
        if (
            sorted(order) == list(range(len(keys)))
            and not compiler.annotation_col_map
            and not getattr(queryset, "_known_related_objects", None)
        ):
            klass_info, select = compiler.klass_info, compiler.select
            assert klass_info is not None
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            compiled = _Compiled(
                sql=sql,
                order=order,
                model=klass_info["model"],
                start=start,
                end=end,
                init_list=[column[0].target.attname for column in select[start:end]],
                populators=get_related_populators(klass_info, select, using),
                converters=compiler.get_converters([column[0] for column in select[: compiler.col_count]]),
            )
        self._compiled[(using, connections[using].vendor)] = compiled
        return compiled


_MISSING: Any = object()
