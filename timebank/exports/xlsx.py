"""Streaming .xlsx exports: one small helper every register, report and dashboard uses.

Usage (in a view; `export_response` returns a streamed FileResponse)::

    from timebank.exports.xlsx import Column, OrgShield, export_response
    from timebank.lib.masking import mask_name, mask_phone

    shield = OrgShield(user)                       # may this role see personal data of a member of org X?
    columns = [
        Column(_("会员编号"), lambda m: m.pk),
        Column(_("姓名"), lambda m: m.name, mask=mask_name),        # masked unless reveal(row)
        Column(_("电话"), lambda m: m.phone, mask=mask_phone),
        Column(_("身份证号（已遮挡）"), lambda m: m.id_number_masked),  # already masked: no mask=
    ]
    return export_response(
        user,
        name="members",                             # audit action "export.members", file members-<date>.xlsx
        title=_("会员名册"),                          # the sheet's name
        columns=columns,
        rows=queryset.iterator(chunk_size=CHUNK),   # any iterable; never build a list of 100k rows
        reveal=lambda m: shield.allows(m.home_org_id),  # or True / False for the whole file
        bank_id=bank_id,                            # the audit chain; None for the global one (superuser)
        filters={"org": org_id},                    # recorded on the audit entry
    )

Rows are written by openpyxl's write-only workbook into a temporary file as they come, so memory stays flat
for 100,000 rows; the file is streamed back and gone once the response is closed. Every export is audited
(`export.<name>`, with the row count and how many rows were shown unmasked) before the first byte is sent.
The rows are read from the read replica when there is one (`DATABASE_REPLICA_URL`, timebank/ops/replica.py):
check access before calling and pass `rows` lazily (a queryset's iterator); the audit entry goes to the primary.
Strings are always written as text, so a name such as "=HYPERLINK(…)" never becomes a formula.
Use `write_xlsx` directly when the file is not an HTTP response (a background job, a benchmark).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from django.http import FileResponse
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from timebank.lib import clock
from timebank.ops.replica import reading_from_replica
from timebank.orgs.models import Org, User

CHUNK = 2000
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel refuses sheet names over 31 characters or with these.
_SHEET_BAD = str.maketrans(dict.fromkeys("[]:*?/\\", " "))


@dataclass(frozen=True)
class Column:
    """One column: its header, how to read the value from a row, and how to mask it for readers without rights."""

    title: Any
    value: Callable[[Any], Any]
    mask: Callable[[str], str] | None = None
    width: int | None = None


@dataclass
class ExportResult:
    rows: int = 0
    unmasked_rows: int = 0


class OrgShield:
    """Whether the reader may see a member's personal data, decided once per home org (the members' access rule:
    staff, admins and operators of the member's home subtree; the superuser)."""

    def __init__(self, user: User) -> None:
        self.user = user
        self._orgs: dict[int, bool] = {}

    def allows(self, org_id: int | None) -> bool:
        from timebank.members.access import READ_ROLES
        from timebank.orgs.access import has_role

        if org_id is None:
            return self.user.is_superuser
        if org_id not in self._orgs:
            org = Org.objects.filter(pk=org_id).first()
            self._orgs[org_id] = org is not None and has_role(self.user, READ_ROLES, org)
        return self._orgs[org_id]


def plain(value: Any) -> Any:
    """A value openpyxl can write: aware datetimes become local naive ones, lazy strings become str."""
    if value is None or isinstance(value, bool | int | float | Decimal | str):
        return value
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, dt.date):
        return value
    return str(value)


def cell(ws: WriteOnlyWorksheet, value: Any) -> Any:
    """One value for a write-only sheet: a string is always a text cell (a name such as "=HYPERLINK(…)", "+1",
    "-1" or "@SUM(…)" never becomes a formula), a date is formatted. Every .xlsx the bank writes goes through it."""
    value = plain(value)
    if isinstance(value, str):
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"  # never a formula
        return cell
    if isinstance(value, dt.datetime | dt.date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = "yyyy-mm-dd hh:mm" if isinstance(value, dt.datetime) else "yyyy-mm-dd"
        return cell
    return value


def sheet_name(title: Any) -> str:
    return (str(title).translate(_SHEET_BAD).strip() or "Sheet")[:31]


def write_xlsx(
    out: IO[bytes],
    *,
    title: Any,
    columns: list[Column],
    rows: Iterable[Any],
    reveal: bool | Callable[[Any], bool] = False,
    after: Iterable[Iterable[Any]] = (),
) -> ExportResult:
    """Write one sheet: a header row, then one row per item of `rows`, masked where `reveal` says no; then, after
    an empty row, the `after` rows as given (a statement's closing balance), not counted as rows."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet_name(title))
    for i, col in enumerate(columns):
        if col.width:
            ws.column_dimensions[_letter(i)].width = col.width
    ws.append([cell(ws, str(c.title)) for c in columns])
    result = ExportResult()
    has_masks = any(c.mask is not None for c in columns)
    for row in rows:
        shown = reveal if isinstance(reveal, bool) else (bool(reveal(row)) if has_masks else True)
        values = []
        for col in columns:
            value = col.value(row)
            if col.mask is not None and not shown and value not in (None, ""):
                value = col.mask(str(value))
            values.append(cell(ws, value))
        ws.append(values)
        result.rows += 1
        if shown and has_masks:
            result.unmasked_rows += 1
    if after:
        ws.append([])
        for extra in after:
            ws.append([cell(ws, value) for value in extra])
    wb.save(out)
    return result


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def export_response(
    actor: User,
    *,
    name: str,
    title: Any,
    columns: list[Column],
    rows: Iterable[Any],
    reveal: bool | Callable[[Any], bool] = False,
    bank_id: int | None,
    filters: dict[str, Any] | None = None,
    filename: str | None = None,
    after: Iterable[Iterable[Any]] = (),
) -> FileResponse:
    """Write the sheet to a temporary file, audit the export, and stream the file back."""
    from timebank.exports.actions import do_record_export

    out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it after streaming
    try:
        with reading_from_replica():  # the rows; the audit entry below is a write, on the primary
            result = write_xlsx(out, title=title, columns=columns, rows=rows, reveal=reveal, after=after)
        do_record_export(
            actor, name, bank_id=bank_id, rows=result.rows, unmasked_rows=result.unmasked_rows, filters=filters or {}
        )
    except BaseException:
        out.close()
        raise
    out.seek(0)
    stamp = clock.localdate().isoformat()
    return FileResponse(out, as_attachment=True, filename=filename or f"{name}-{stamp}.xlsx", content_type=CONTENT_TYPE)
