"""Finding 10: a small census .xlsx that unpacks to a huge shared-string table or sheet is refused with a 422
before openpyxl spends memory and CPU on it; ordinary census files still import."""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import World, error_code, new_id_number
from tests.test_census_import import HEADER, upload, xlsx_bytes
from timebank.needs import census
from timebank.needs.models import CensusImport

BOMB_CODE = "file_expands_too_much"


def _workbook_parts(shared_strings: bytes, sheet: bytes) -> dict[str, bytes]:
    """A minimal .xlsx openpyxl reads: content types, workbook, its rels, one sheet and its shared strings."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/>'
            "</Types>"
        ).encode(),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ).encode(),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}">'
            '<sheets><sheet name="普查" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
        ).encode(),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": shared_strings,
    }


def _zip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def _sheet(rows: str) -> bytes:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    return f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>{rows}</sheetData></worksheet>'.encode()


def shared_strings_bomb(unpacked_mb: int = 40) -> bytes:
    """Two real header cells, and a shared-string table of `unpacked_mb` MB of one repeated long string."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    filler = "<si><t>" + "甲" * 4000 + "</t></si>"
    count = unpacked_mb * 1024 * 1024 // len(filler.encode())
    strings = (
        f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{main}" count="{count + 2}" uniqueCount="{count + 2}">'
        "<si><t>姓名</t></si><si><t>身份证号</t></si>" + filler * count + "</sst>"
    ).encode()
    sheet = _sheet('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>')
    return _zip(_workbook_parts(strings, sheet))


def test_finding_10_a_small_xlsx_whose_shared_strings_expand_hugely_is_refused_before_memory_is_spent(
    world: World,
) -> None:
    bomb = shared_strings_bomb(40)
    assert len(bomb) < 400 * 1024  # small on the wire, like the 385 KB file of the finding
    upload(world, "staff", "warm-up.csv", b"")  # the first request imports the whole API: not what is measured
    tracemalloc.start()
    started = time.monotonic()
    try:
        resp = upload(world, "staff", "普查.xlsx", bomb)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert resp.status_code == 422, resp.content
    assert error_code(resp) == BOMB_CODE
    assert elapsed < 5, elapsed
    assert peak < 30 * 1024 * 1024, peak  # the 40 MB table was never unpacked into memory
    assert CensusImport.objects.count() == 0


STRINGS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>x</t></si></sst>'
)


def test_a_row_with_too_many_cells_is_refused_within_the_size_limits(world: World) -> None:
    """Few bytes per cell (`<c/>`), but more in one row than Excel allows: openpyxl would build them all at once."""
    wide = _sheet('<row r="1">' + "<c/>" * (census.MAX_ROW_CELLS + 1) + "</row>")
    started = time.monotonic()
    resp = upload(world, "staff", "wide.xlsx", _zip(_workbook_parts(STRINGS, wide)))
    assert resp.status_code == 422 and error_code(resp) == BOMB_CODE, resp.content
    assert time.monotonic() - started < 5


def test_too_many_elements_in_total_are_refused(world: World) -> None:
    rows = "".join(f'<row r="{i}">' + "<c/>" * 9 + "</row>" for i in range(1, 320_000))
    resp = upload(world, "staff", "many.xlsx", _zip(_workbook_parts(STRINGS, _sheet(rows))))
    assert resp.status_code == 422 and error_code(resp) == BOMB_CODE, resp.content


def test_the_command_refuses_the_bomb_too(world: World, tmp_path: Path) -> None:
    path = tmp_path / "普查.xlsx"
    path.write_bytes(shared_strings_bomb(20))
    with pytest.raises(CommandError, match=BOMB_CODE):
        call_command("import_census", str(path), org=world.bank.pk, stdout=io.StringIO())
    assert CensusImport.objects.count() == 0


def test_an_ordinary_census_file_still_imports(world: World) -> None:
    rows: list[list[Any]] = [list(HEADER)]
    rows += [
        [f"人{i}", new_id_number(), "男", "", "13800001111", "顺河社区 1 号", "顺河社区", "独居", "送餐"]
        for i in range(2000)
    ]
    resp = upload(world, "staff", "普查.xlsx", xlsx_bytes(rows))
    assert resp.status_code == 201, resp.content
    counts = resp.json()["counts"]
    assert counts["rows"] == 2000 and counts["accepted"] == 2000, counts
