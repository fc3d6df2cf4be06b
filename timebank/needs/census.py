"""人口普查导入: read a census file (.xlsx or .csv), check every row, and report. Nothing here writes.

One bad row never spoils the rest: each row is accepted or rejected with reason codes, and only a problem
with the file as a whole (too big, unreadable, no header) refuses the upload.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock, crypto, idnumber
from timebank.lib.errors import Invalid
from timebank.lib.phone import PHONE_RE
from timebank.members.models import Member
from timebank.orgs.models import Org, OrgKind

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
# A zipped .xlsx of 5 MB could unpack to gigabytes, and openpyxl keeps every shared string in memory (a
# 162 MB string table took 1.4 GB). Real census sheets of 20,000 rows stay far below these, so what a file
# expands to is checked from the zip's directory and a streamed count of its XML before openpyxl reads it.
MAX_UNZIPPED_BYTES = 64 * 1024 * 1024
MAX_SHARED_STRINGS_BYTES = 16 * 1024 * 1024
MAX_PART_BYTES = 48 * 1024 * 1024
MAX_PARTS = 500
MAX_XML_ELEMENTS = 3_000_000
MAX_ROW_CELLS = 16_384  # Excel's own column limit
MAX_COLUMNS = 40
MAX_CELL = 1000

Progress = Callable[[int, int], None]

# Canonical field → accepted header spellings (compared after `_header_key`).
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "name"),
    "id_number": ("身份证号", "身份证号码", "身份证", "公民身份号码", "id_number", "idnumber", "id"),
    "gender": ("性别", "gender", "sex"),
    "birth_date": ("出生日期", "出生年月", "birth_date", "birthdate", "birthday"),
    "phone": ("电话", "联系电话", "手机", "手机号", "手机号码", "phone", "mobile", "telephone"),
    "address": ("住址", "地址", "家庭住址", "居住地址", "address"),
    "community": ("社区", "所属社区", "村居", "村（居）", "community"),
    "categories": ("类别", "对象类别", "人员类别", "categories", "category"),
    "need": ("需求", "需求描述", "need", "needs"),
}
REQUIRED_COLUMNS = ("name", "id_number")

CATEGORY_WORDS: dict[str, str] = {
    "空巢": "empty_nest",
    "留守": "left_behind",
    "失能": "disabled",
    "半失能": "partly_disabled",
    "重残": "severe_disability",
    "重度残疾": "severe_disability",
    "特困": "extreme_poverty",
    "特困供养": "extreme_poverty",
    "低保": "subsistence_allowance",
    "建档立卡贫困户": "registered_poor",
    "建档立卡": "registered_poor",
    "贫困户": "registered_poor",
    "高龄": "advanced_age",
    "独居": "living_alone",
}
CATEGORY_CODES = frozenset(CATEGORY_WORDS.values())
CATEGORY_SUFFIXES = ("老人", "人员", "对象", "家庭", "户")
CATEGORY_SPLIT = re.compile(r"[,，、;；/|\s]+")

GENDER_WORDS = {"男": "male", "男性": "male", "male": "male", "m": "male", "女": "female", "女性": "female"}
GENDER_WORDS |= {"female": "female", "f": "female"}

DATE_PATTERNS = (
    re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)

MESSAGES: dict[str, Promise] = {
    "missing_name": _("缺少姓名。"),
    "name_too_long": _("姓名太长（50 字以内）。"),
    "missing_id_number": _("缺少身份证号。"),
    "birth_date_out_of_range": _("身份证号中的出生日期不合理。"),
    "id_number_invalid": _("身份证号格式不正确，应为 18 位（在 Excel 中请把这一列设为文本格式）。"),
    "id_number_checksum": _("身份证号校验位不正确，请核对。"),
    "duplicate_in_file": _("与第 %(row)s 行的身份证号重复。"),
    "duplicate_in_bank": _("本银行已有这个身份证号的会员。"),
    "missing_community": _("缺少社区。"),
    "unknown_community": _("找不到社区“%(community)s”（须在本机构管辖范围内）。"),
    "ambiguous_community": _("有多个机构都叫“%(community)s”，无法确定是哪一个。"),
    "invalid_gender": _("性别只能填“男”或“女”。"),
    "invalid_phone": _("电话号码格式不对。"),
    "address_too_long": _("住址太长（200 字以内）。"),
    "unknown_category": _("不认识的类别：%(labels)s。"),
    "need_too_long": _("需求太长（500 字以内）。"),
    "outside_subtree": _("这个社区不在您的管辖范围内。"),
    "write_failed": _("写入失败，请重新导入这一行。"),
    "birth_date_mismatch": _("出生日期与身份证号不一致，以身份证号为准。"),
    "birth_date_unreadable": _("出生日期无法识别，以身份证号为准。"),
}


def message(reason: dict[str, Any]) -> str:
    """A reason's text in the caller's language (reports store codes, not text)."""
    template = MESSAGES.get(reason["code"])
    if template is None:
        return str(reason.get("message", reason["code"]))
    params = reason.get("params") or {}
    return str(template) % params if params else str(template)


def _header_key(text: str) -> str:
    return re.sub(r"[\s_\-\u3000]+", "", text).lower()


HEADER_INDEX = {_header_key(alias): name for name, aliases in COLUMNS.items() for alias in aliases}


# ---- reading the file ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        # Numbers typed into Excel (phones) come back as floats; 18-digit IDs do not survive this anyway.
        value = int(value) if value.is_integer() and abs(value) < 1e15 else value
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).replace("\x00", "").strip()[:MAX_CELL]


def _file_error(code: str, text: Promise, **fields: Any) -> Invalid:
    return Invalid(text, code=code, fields={"file": code, **fields})


def _too_big_unpacked() -> Invalid:
    return _file_error(
        "file_expands_too_much",
        _("文件解压后过大或单元格过多，无法读取。请删去多余的工作表和格式后另存，或分成几个文件。"),
    )


def _shared_strings_parts(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> set[str]:
    """The parts openpyxl would read as the shared-string table: named so, or declared so in [Content_Types].xml."""
    parts = {i.filename for i in infos if "sharedstrings" in i.filename.lower()}
    types = next((i for i in infos if i.filename == "[Content_Types].xml"), None)
    if types is None or types.file_size > 1024 * 1024:
        return parts
    found: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name.rsplit(":", 1)[-1] == "Override" and "sharedStrings" in attrs.get("ContentType", ""):
            found.append(attrs.get("PartName", "").lstrip("/"))

    _parse_xml(archive, types, start)
    return parts | set(found)


def _parse_xml(archive: zipfile.ZipFile, info: zipfile.ZipInfo, start: Callable[[str, dict[str, str]], None]) -> None:
    """Stream one part through expat with `start` called per element; nothing is kept. Parts that are not XML
    (images) are skipped; a DOCTYPE (entity tricks) is refused."""
    import pyexpat

    def doctype(*_args: Any) -> None:
        raise _too_big_unpacked()

    with archive.open(info) as stream:
        head = stream.read(1024)
        if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            return
        parser = pyexpat.ParserCreate()
        parser.StartElementHandler = start
        parser.StartDoctypeDeclHandler = doctype
        try:
            parser.Parse(head, False)
            while chunk := stream.read(256 * 1024):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except pyexpat.ExpatError:
            return  # openpyxl refuses it later as unreadable, without spending memory on it


def check_expansion(archive: zipfile.ZipFile) -> None:
    """Refuse (422 `file_expands_too_much`) a workbook whose parts unpack to more than a census can need, before
    openpyxl spends memory on it. The sizes come from the zip's directory; zipfile never unpacks more than a part
    declares (a lie there fails its CRC). Then every XML part is counted as a stream: elements, cells per row."""
    infos = archive.infolist()
    if len(infos) > MAX_PARTS or sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise _too_big_unpacked()
    if any(i.file_size > MAX_PART_BYTES for i in infos):
        raise _too_big_unpacked()
    strings = _shared_strings_parts(archive, infos)
    if any(i.file_size > MAX_SHARED_STRINGS_BYTES for i in infos if i.filename in strings):
        raise _too_big_unpacked()
    elements = 0
    row_cells = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal elements, row_cells
        elements += 1
        if elements > MAX_XML_ELEMENTS:
            raise _too_big_unpacked()
        local = name.rsplit(":", 1)[-1]
        if local == "row":
            row_cells = 0
        elif local == "c":
            row_cells += 1
            if row_cells > MAX_ROW_CELLS:
                raise _too_big_unpacked()

    for info in infos:
        if not info.is_dir():
            row_cells = 0
            _parse_xml(archive, info, start)


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_expansion(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, RuntimeError, OSError, EOFError):
        raise _file_error("unreadable_file", _("无法读取这个 Excel 文件，请另存为 .xlsx 或 .csv 后重试。")) from None
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise _file_error("unreadable_file", _("无法读取这个 Excel 文件，请另存为 .xlsx 或 .csv 后重试。")) from None
    try:
        if not book.worksheets:
            return
        for values in book.worksheets[0].iter_rows(max_col=MAX_COLUMNS, values_only=True):
            yield [_cell(v) for v in values]
    except Invalid:
        raise
    except Exception:
        raise _file_error("unreadable_file", _("无法读取这个 Excel 文件，请另存为 .xlsx 或 .csv 后重试。")) from None
    finally:
        book.close()


def _decode(data: bytes) -> str:
    # Excel saves "CSV UTF-8" with a BOM and plain "CSV" in the local code page (GBK on Chinese Windows).
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_error("unreadable_file", _("无法识别文件编码，请保存为 UTF-8 或 GBK 编码的 CSV。"))


def _csv_rows(data: bytes) -> Iterator[list[str]]:
    text = _decode(data).replace("\x00", "")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    try:
        for values in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            yield [_cell(v) for v in values[:MAX_COLUMNS]]
    except csv.Error:
        raise _file_error("unreadable_file", _("CSV 文件格式有误，无法读取。")) from None


@dataclass
class Table:
    header: list[str]
    # (row number as the spreadsheet shows it, cells)
    rows: list[tuple[int, list[str]]]
    empty_rows: int


def read_table(filename: str, data: bytes) -> Table:
    if len(data) > MAX_FILE_BYTES:
        raise _file_error("file_too_large", _("文件太大，最大 5 MB。"), max_bytes=MAX_FILE_BYTES)
    name = filename.lower()
    if data.startswith(b"PK\x03\x04") or name.endswith((".xlsx", ".xlsm")):
        source = _xlsx_rows(data)
    elif name.endswith((".csv", ".txt")):
        source = _csv_rows(data)
    else:
        raise _file_error("unsupported_file_type", _("只支持 .xlsx 和 .csv 文件。"))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    empty = 0
    for number, cells in enumerate(source, start=1):
        if not any(cells):
            if header is not None:
                empty += 1
            # Sheets padded with formatted but empty rows must not make us scan for ever.
            if number > 3 * MAX_ROWS:
                break
            continue
        if header is None:
            header = cells
            continue
        rows.append((number, cells))
        if len(rows) > MAX_ROWS:
            raise _file_error("too_many_rows", _("一次最多导入 20000 行，请分成几个文件。"), max_rows=MAX_ROWS)
    if header is None:
        raise _file_error("empty_file", _("文件是空的。"))
    return Table(header, rows, empty)


def map_header(header: list[str]) -> tuple[dict[str, int], list[str]]:
    """Column index per field, and the header cells that mean nothing to us (reported, not refused)."""
    found: dict[str, int] = {}
    ignored: list[str] = []
    for index, text in enumerate(header):
        name = HEADER_INDEX.get(_header_key(text))
        if name is None or name in found:
            if text:
                ignored.append(text)
            continue
        found[name] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        raise Invalid(
            _("缺少必需的列：%(columns)s。") % {"columns": "、".join(COLUMNS[c][0] for c in missing)},
            code="missing_columns",
            fields={"file": "missing_columns", "columns": missing},
        )
    return found, ignored


# ---- checking rows ------------------------------------------------------------------------------------


def parse_categories(text: str) -> tuple[list[str], list[str]]:
    """(codes, words we do not know)."""
    codes: set[str] = set()
    unknown: list[str] = []
    for word in CATEGORY_SPLIT.split(text):
        if not word:
            continue
        code = _category(word)
        if code is None:
            unknown.append(word)
        else:
            codes.add(code)
    return sorted(codes), unknown


def _category(word: str) -> str | None:
    if word.lower() in CATEGORY_CODES:
        return word.lower()
    if word in CATEGORY_WORDS:
        return CATEGORY_WORDS[word]
    for suffix in CATEGORY_SUFFIXES:
        if word.endswith(suffix) and word[: -len(suffix)] in CATEGORY_WORDS:
            return CATEGORY_WORDS[word[: -len(suffix)]]
    return None


def parse_date(text: str) -> dt.date | None:
    for pattern in DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            try:
                return dt.date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return None
    return None


@dataclass
class Communities:
    """Org names within the import's subtree."""

    scope: Org
    by_name: dict[str, list[Org]] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: Org) -> Communities:
        found = cls(scope)
        for org in Org.objects.filter(path__startswith=scope.path).order_by("pk"):
            found.by_name.setdefault(org.name, []).append(org)
        return found

    def resolve(self, name: str) -> tuple[Org | None, dict[str, Any] | None]:
        if not name:
            if self.scope.kind in (OrgKind.SUB_BRANCH, OrgKind.OUTLET):
                return self.scope, None
            return None, {"code": "missing_community"}
        matches = self.by_name.get(name, [])
        if not matches:
            return None, {"code": "unknown_community", "params": {"community": name}}
        if len(matches) > 1:
            return None, {"code": "ambiguous_community", "params": {"community": name}}
        return matches[0], None


@dataclass
class Checked:
    accepted: list[dict[str, Any]]
    report: dict[str, Any]


def _check_row(number: int, get: Callable[[str], str], communities: Communities) -> tuple[dict, dict]:
    reasons: list[dict[str, Any]] = []
    warns: list[dict[str, Any]] = []
    name = get("name")
    if not name:
        reasons.append({"code": "missing_name"})
    elif len(name) > 50:
        reasons.append({"code": "name_too_long"})
    number_text = get("id_number").replace(" ", "")
    id_number = ""
    if not number_text:
        reasons.append({"code": "missing_id_number"})
    else:
        try:
            id_number = idnumber.normalise(number_text)
        except idnumber.IdNumberError as exc:
            reasons.append({"code": "id_number_checksum" if exc.reason == "checksum" else "id_number_invalid"})
    gender = ""
    gender_text = get("gender")
    if gender_text:
        gender = GENDER_WORDS.get(gender_text.lower(), "")
        if not gender:
            reasons.append({"code": "invalid_gender"})
    elif id_number:
        gender = "male" if int(id_number[16]) % 2 else "female"
    birth = idnumber.birth_date(id_number) if id_number else None
    if birth is not None and not dt.date(1900, 1, 1) <= birth <= clock.localdate():
        reasons.append({"code": "birth_date_out_of_range"})
        birth = None
    birth_text = get("birth_date")
    if birth_text and birth is not None:
        given = parse_date(birth_text)
        if given is None:
            warns.append({"code": "birth_date_unreadable"})
        elif given != birth:
            warns.append({"code": "birth_date_mismatch"})
    phone = re.sub(r"\s+", "", get("phone"))
    if phone and not PHONE_RE.match(phone):
        reasons.append({"code": "invalid_phone"})
    address = get("address")
    if len(address) > 200:
        reasons.append({"code": "address_too_long"})
    community_text = get("community")
    community, problem = communities.resolve(community_text)
    if problem:
        reasons.append(problem)
    categories, unknown = parse_categories(get("categories"))
    if unknown:
        reasons.append({"code": "unknown_category", "params": {"labels": "、".join(unknown)}})
    need = get("need")
    if len(need) > 500:
        reasons.append({"code": "need_too_long"})
    result = {
        "row": number,
        "status": "rejected" if reasons else "accepted",
        "name": name[:50],
        "id_number_masked": idnumber.mask(id_number) if id_number else "",
        "community": community.name if community else community_text[:100],
        "reasons": reasons,
        "warnings": warns,
    }
    data = {
        "row": number,
        "name": name,
        "id_number": id_number,
        "gender": gender,
        "birth_date": birth.isoformat() if birth else None,
        "phone": phone,
        "address": address,
        "community_id": community.pk if community else None,
        "categories": categories,
        "need": need,
    }
    return result, data


def check_table(scope: Org, table: Table, progress: Progress | None = None) -> Checked:
    """Check every row against the file itself and against the bank; the database is only read."""
    columns, ignored = map_header(table.header)

    communities = Communities.of(scope)
    results: list[dict[str, Any]] = []
    datas: list[dict[str, Any]] = []
    first_seen: dict[str, int] = {}
    total = len(table.rows)
    for done, (number, cells) in enumerate(table.rows, start=1):

        def get(name: str, cells: list[str] = cells) -> str:
            index = columns.get(name)
            return cells[index] if index is not None and index < len(cells) else ""

        result, data = _check_row(number, get, communities)
        id_number = data["id_number"]
        if id_number:
            if id_number in first_seen:
                result["reasons"].append({"code": "duplicate_in_file", "params": {"row": first_seen[id_number]}})
                result["status"] = "rejected"
            else:
                first_seen[id_number] = number
        results.append(result)
        datas.append(data)
        if progress is not None and (done % 200 == 0 or done == total):
            progress(done, total)
    _mark_known(scope, results, datas)
    accepted = [d for r, d in zip(results, datas, strict=True) if r["status"] == "accepted"]
    report = {
        "counts": {
            "rows": total,
            "accepted": len(accepted),
            "rejected": total - len(accepted),
            "empty_rows": table.empty_rows,
        },
        "columns": {name: table.header[index] for name, index in columns.items()},
        "ignored_columns": ignored,
        "rows": results,
    }
    return Checked(accepted, report)


def _mark_known(scope: Org, results: list[dict[str, Any]], datas: list[dict[str, Any]]) -> None:
    """Reject rows whose ID number is already a member of the bank (found through the keyed hash)."""
    hashes: dict[str, list[int]] = {}
    for i, d in enumerate(datas):
        if d["id_number"]:
            hashes.setdefault(crypto.keyed_hash(d["id_number"], scope="id_number"), []).append(i)
    known: set[str] = set()
    keys = list(hashes)
    for start in range(0, len(keys), 500):
        known.update(
            Member.objects.filter(
                bank_id=scope.head_office_id, id_number_hash__in=keys[start : start + 500]
            ).values_list("id_number_hash", flat=True)
        )
    for key in known:
        for i in hashes[key]:
            results[i]["reasons"].append({"code": "duplicate_in_bank"})
            results[i]["status"] = "rejected"


def render_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report rows with messages in the caller's language."""
    return [
        {
            **row,
            "reasons": [{**r, "message": message(r)} for r in row.get("reasons", [])],
            "warnings": [{**w, "message": message(w)} for w in row.get("warnings", [])],
        }
        for row in rows
    ]
