"""人口普查导入: a dry run that writes nothing, a confirmation that writes exactly the good rows, once."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from openpyxl import Workbook

from tests.conftest import World, error_code, new_id_number
from timebank.audit.models import AuditEntry
from timebank.members.models import Member
from timebank.needs import actions, census
from timebank.needs.models import CensusImport, Need

HEADER = ["姓名", "身份证号", "性别", "出生日期", "电话", "住址", "社区", "类别", "需求"]


def bad_checksum(number: str) -> str:
    last = number[-1]
    return number[:-1] + ("0" if last != "0" else "1")


def census_rows(world: World) -> tuple[list[list[Any]], dict[str, str]]:
    """Good rows mixed with every kind of bad one. Returns the rows and the ID numbers of the good ones."""
    good = {
        "zhang": new_id_number(dt.date(1948, 2, 3)),
        "sun": new_id_number(dt.date(1950, 7, 8)),
        "zhou": new_id_number(dt.date(1944, 11, 30)),
    }
    rows: list[list[Any]] = [
        HEADER,
        ["张三", good["zhang"], "男", "", "13800001111", "顺河社区 1 号", "顺河社区", "独居、空巢", "需要送餐"],  # 2
        ["李四", bad_checksum(new_id_number()), "女", "", "", "", "顺河社区", "", ""],  # 3: checksum
        ["王五", good["zhang"], "男", "", "", "", "顺河社区", "", ""],  # 4: same ID as row 2
        ["赵六", world.members["recipient"].id_number(), "男", "", "", "", "顺河社区", "", ""],  # 5: in the bank
        ["钱七", new_id_number(), "女", "", "", "", "火星社区", "", ""],  # 6: unknown community
        ["陈八", new_id_number(), "女", "", "", "", "驻春路社区", "", ""],  # 7: another bank's community
        ["", new_id_number(), "女", "", "", "", "顺河社区", "", ""],  # 8: no name
        [None, None, None, None, None, None, None, None, None],  # 9: an empty line
        ["孙九", good["sun"], "", "1950-07-08", "139 1234 5678", "", "泥沟村", "低保户,left_behind", ""],  # 10
        ["吴十", new_id_number(), "女", "", "", "", "顺河社区", "外星人", ""],  # 11: unknown category
        ["周奶奶", good["zhou"], "女", dt.date(1944, 1, 1), "", "", "顺河社区", "失能老人", ""],  # 12: date differs
        ["郑伯", new_id_number(), "男", "", "12", "", "顺河社区", "", ""],  # 13: bad phone
        ["冯姨", "12345", "女", "", "", "", "顺河社区", "", ""],  # 14: not an ID number
        ["何叔", new_id_number(), "", "", "", "", "", "", ""],  # 15: no community (head office scope)
    ]
    return rows, good


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[Any]], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([["" if v is None else str(v) for v in row] for row in rows])
    return out.getvalue().encode(encoding)


def upload(world: World, persona: str, name: str, data: bytes, **form: Any) -> Any:
    return multipart(world, persona, {"file": SimpleUploadedFile(name, data), **form})


def multipart(world: World, persona: str, form: dict[str, Any]) -> Any:
    api = world.api(persona)
    extra: dict[str, Any] = dict(api.headers)
    return api.client.post("/api/v1/census-imports", form, **extra)


def reasons(report: dict[str, Any]) -> dict[int, list[str]]:
    return {r["row"]: [x["code"] for x in r["reasons"]] for r in report["rows"]}


EXPECTED_REASONS = {
    2: [],
    3: ["id_number_checksum"],
    4: ["duplicate_in_file"],
    5: ["duplicate_in_bank"],
    6: ["unknown_community"],
    7: ["unknown_community"],
    8: ["missing_name"],
    10: [],
    11: ["unknown_category"],
    12: [],
    13: ["invalid_phone"],
    14: ["id_number_invalid"],
    15: ["missing_community"],
}


@pytest.mark.parametrize("kind", ["xlsx", "csv-utf8-bom", "csv-utf8", "csv-gbk"])
def test_dry_run_writes_nothing_and_confirm_writes_exactly_the_good_rows(world: World, kind: str) -> None:
    rows, good = census_rows(world)
    data = {
        "xlsx": lambda: xlsx_bytes(rows),
        "csv-utf8-bom": lambda: csv_bytes(rows, "utf-8-sig"),
        "csv-utf8": lambda: csv_bytes(rows, "utf-8"),
        "csv-gbk": lambda: csv_bytes(rows, "gbk"),
    }[kind]()
    name = "普查.xlsx" if kind == "xlsx" else "普查.csv"
    members, needs = Member.objects.count(), Need.objects.count()

    resp = upload(world, "head_office_admin", name, data)
    assert resp.status_code == 201, resp.content
    report = resp.json()
    assert report["status"] == "dry_run"
    assert report["counts"] == {
        "rows": 13,
        "accepted": 3,
        "rejected": 10,
        "empty_rows": 1,
        "written": None,
        "failed": None,
    }
    assert reasons(report) == EXPECTED_REASONS
    by_row = {r["row"]: r for r in report["rows"]}
    assert by_row[4]["reasons"][0]["params"] == {"row": 2}
    assert "第 2 行" in by_row[4]["reasons"][0]["message"]
    assert [w["code"] for w in by_row[12]["warnings"]] == ["birth_date_mismatch"]
    assert by_row[2]["id_number_masked"].count("*") == 10
    # The dry run wrote no member and no need, and keeps no plain ID number.
    assert (Member.objects.count(), Need.objects.count()) == (members, needs)
    imp = CensusImport.objects.get(pk=report["id"])
    assert good["zhang"] not in imp.rows_encrypted and good["zhang"] not in str(imp.report)

    confirmed = world.api("head_office_admin").post(f"/api/v1/census-imports/{report['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.content
    body = confirmed.json()
    assert body["status"] == "confirmed"
    assert body["counts"]["written"] == 3 and body["counts"]["failed"] == 0
    assert Member.objects.count() == members + 3
    written = {r["row"]: r for r in body["rows"] if r["status"] == "written"}
    assert set(written) == {2, 10, 12}
    zhang = Member.objects.get(pk=written[2]["member_id"])
    assert zhang.id_number() == good["zhang"] and zhang.home_org == world.community
    assert zhang.roles == ["recipient"] and zhang.status == "active"
    assert zhang.recipient_categories == ["empty_nest", "living_alone"]
    assert zhang.gender == "male" and zhang.birth_date == dt.date(1948, 2, 3) and zhang.phone == "13800001111"
    assert zhang.address == "顺河社区 1 号"
    sun = Member.objects.get(pk=written[10]["member_id"])
    # No gender given: the ID number's 17th digit says (odd: male).
    assert sun.home_org == world.community2 and sun.gender == ("male" if int(good["sun"][16]) % 2 else "female")
    assert sun.recipient_categories == ["left_behind", "subsistence_allowance"] and sun.phone == "13912345678"
    zhou = Member.objects.get(pk=written[12]["member_id"])
    assert zhou.birth_date == dt.date(1944, 11, 30) and zhou.recipient_categories == ["disabled"]
    need = Need.objects.get(pk=written[2]["need_id"])
    assert (need.recipient, need.found_by, need.level, need.notes) == (zhang, "census", "general", "需要送餐")
    assert need.census_import_id == report["id"]
    assert Need.objects.count() == needs + 1
    assert CensusImport.objects.get(pk=report["id"]).rows_encrypted == ""

    # Confirming again writes nothing more.
    audits = AuditEntry.objects.count()
    again = world.api("head_office_admin").post(f"/api/v1/census-imports/{report['id']}/confirm")
    assert again.status_code == 200 and again.json()["counts"]["written"] == 3
    assert Member.objects.count() == members + 3 and Need.objects.count() == needs + 1
    assert AuditEntry.objects.count() == audits
    read = world.api("staff").get(f"/api/v1/census-imports/{report['id']}")
    assert read.status_code == 403  # a head-office import is not the community's to read
    rejected = world.api("head_office_admin").get(f"/api/v1/census-imports/{report['id']}", {"rows": "rejected"})
    assert len(rejected.json()["rows"]) == 10


def test_confirm_checks_each_row_again_and_one_failure_spoils_nothing(world: World) -> None:
    rows, good = census_rows(world)
    report = upload(world, "head_office_admin", "a.xlsx", xlsx_bytes(rows)).json()
    # Between the dry run and the confirmation, 孙九 registers at the desk.
    world.api("staff_next").post(
        "/api/v1/members",
        {"name": "孙九", "home_org_id": world.community2.pk, "id_number": good["sun"], "roles": ["recipient"]},
    )
    members = Member.objects.count()
    body = world.api("head_office_admin").post(f"/api/v1/census-imports/{report['id']}/confirm").json()
    assert body["counts"]["written"] == 2 and body["counts"]["failed"] == 1
    failed = next(r for r in body["rows"] if r["status"] == "failed")
    assert failed["row"] == 10 and [x["code"] for x in failed["reasons"]] == ["duplicate_in_bank"]
    assert Member.objects.count() == members + 2


def test_community_staff_import_into_their_own_community(world: World) -> None:
    rows, _good = census_rows(world)
    resp = upload(world, "staff", "a.csv", csv_bytes(rows, "utf-8-sig"))
    assert resp.status_code == 201
    found = reasons(resp.json())
    assert found[10] == ["unknown_community"]  # 泥沟村 is outside 顺河社区's subtree
    assert found[15] == []  # no community given: their own
    assert resp.json()["org_id"] == world.community.pk
    # Staff of the next community cannot read or confirm it.
    for persona in ("staff_next", "other_bank_admin", "operator", "recipient"):
        api = world.api(persona)
        assert api.get(f"/api/v1/census-imports/{resp.json()['id']}").status_code == 403, persona
        assert api.post(f"/api/v1/census-imports/{resp.json()['id']}/confirm").status_code == 403, persona
    assert CensusImport.objects.get().status == "dry_run"
    listed = world.api("staff").get("/api/v1/census-imports").json()["items"]
    assert [i["id"] for i in listed] == [resp.json()["id"]] and listed[0]["rows"] == []
    assert world.api("staff_next").get("/api/v1/census-imports").json()["items"] == []


def test_who_may_upload(world: World) -> None:
    rows, _good = census_rows(world)
    data = csv_bytes(rows, "utf-8")
    assert upload(world, "operator", "a.csv", data).status_code == 403
    assert upload(world, "volunteer", "a.csv", data).status_code == 403
    assert upload(world, "anonymous", "a.csv", data).status_code == 401
    assert upload(world, "staff", "a.csv", data, org_id=world.community2.pk).status_code == 403
    assert upload(world, "staff", "a.csv", data, org_id=world.other_community.pk).status_code == 403
    assert upload(world, "superuser", "a.csv", data).status_code == 422  # no org of their own: say which
    assert upload(world, "superuser", "a.csv", data, org_id=world.bank.pk).status_code == 201
    assert CensusImport.objects.count() == 1


def test_bad_files_are_refused_whole_with_a_clear_422(world: World) -> None:
    header = ",".join(HEADER)
    many = header + "\n" + "\n".join(f"人{i},{i}" for i in range(census.MAX_ROWS + 1))
    cases = [
        ("big.csv", b"x" * (census.MAX_FILE_BYTES + 1), "file_too_large"),
        ("a.pdf", b"%PDF-1.4", "unsupported_file_type"),
        ("a.xlsx", b"not a zip at all", "unreadable_file"),
        ("a.xlsx", b"PK\x03\x04garbage", "unreadable_file"),
        ("a.csv", b"", "empty_file"),
        ("a.csv", b"\n\n,,,\n", "empty_file"),
        ("a.csv", "电话,住址\n123,x\n".encode(), "missing_columns"),
        ("a.csv", many.encode(), "too_many_rows"),
        ("a.csv", b"\xff\xfe\xfa\xfb\x80\x81", "unreadable_file"),
    ]
    for name, data, code in cases:
        resp = upload(world, "staff", name, data)
        assert resp.status_code == 422, (name, code, resp.content)
        assert error_code(resp) == code, (name, resp.content)
    api = world.api("staff")
    assert api.post("/api/v1/census-imports", {"file": "x"}).status_code == 422  # JSON, not a file
    assert multipart(world, "staff", {}).status_code == 422
    assert upload(world, "staff", "a.csv", b"a", org_id="abc").status_code == 422
    assert upload(world, "staff", "a.csv", b"a", org_id=str(2**70)).status_code == 422
    assert CensusImport.objects.count() == 0 and Member.objects.count() == 5


def test_cells_with_nul_and_junk_never_reach_the_database(world: World) -> None:
    number = new_id_number()
    text = f"姓名,身份证号,社区,需求\n王\x00大爷,{number},顺河社区,送\x00饭\n"
    resp = upload(world, "staff", "a.csv", text.encode())
    assert resp.status_code == 201, resp.content
    assert resp.json()["counts"]["accepted"] == 1
    body = world.api("staff").post(f"/api/v1/census-imports/{resp.json()['id']}/confirm").json()
    member = Member.objects.get(pk=body["rows"][0]["member_id"])
    assert member.name == "王大爷" and Need.objects.get(recipient=member).notes == "送饭"


def test_an_id_number_born_before_1900_is_refused_in_the_dry_run(world: World) -> None:
    text = f"姓名,身份证号,社区\n王太爷,{new_id_number(dt.date(1899, 12, 31))},顺河社区\n"
    body = upload(world, "staff", "a.csv", text.encode()).json()
    assert reasons(body) == {2: ["birth_date_out_of_range"]}


def test_english_headers_and_unknown_columns(world: World) -> None:
    text = f"Name,ID Number,Community,Categories,Remarks\n王大爷,{new_id_number()},顺河社区,living_alone,x\n"
    body = upload(world, "staff", "a.csv", text.encode()).json()
    assert body["counts"]["accepted"] == 1 and body["ignored_columns"] == ["Remarks"]
    assert body["columns"]["id_number"] == "ID Number"


def test_reading_categories_and_dates() -> None:
    assert census.parse_categories("独居、空巢老人，低保户;特困人员 EMPTY_NEST") == (
        ["empty_nest", "extreme_poverty", "living_alone", "subsistence_allowance"],
        [],
    )
    assert census.parse_categories("独居/火星人") == (["living_alone"], ["火星人"])
    assert census.parse_date("1950年3月1日") == dt.date(1950, 3, 1)
    assert census.parse_date("19500301") == dt.date(1950, 3, 1)
    assert census.parse_date("1950/2/30") is None


def test_the_command_shows_a_dry_run_then_confirms(world: World, tmp_path: Path) -> None:
    rows, _good = census_rows(world)
    path = tmp_path / "普查.xlsx"
    path.write_bytes(xlsx_bytes(rows))
    members = Member.objects.count()
    out = io.StringIO()
    call_command("import_census", str(path), "--org", str(world.bank.pk), stdout=out)
    assert "accepted 3" in out.getvalue() and "rejected 10" in out.getvalue()
    assert Member.objects.count() == members
    out = io.StringIO()
    call_command(
        "import_census", str(path), "--org", str(world.bank.pk), "--confirm", "--user", "head_office_admin", stdout=out
    )
    assert "written 3" in out.getvalue()
    assert Member.objects.count() == members + 3
    assert CensusImport.objects.filter(status="confirmed").count() == 1


def test_an_interrupted_confirmation_resumes_where_it_stopped(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    rows, _good = census_rows(world)
    report = upload(world, "head_office_admin", "a.xlsx", xlsx_bytes(rows)).json()
    monkeypatch.setattr(actions, "CONFIRM_BATCH", 1)
    members = Member.objects.count()

    class CutOff(Exception):
        """The request dies after the first batch has committed."""

    def cut_off(done: int, total: int) -> None:
        raise CutOff

    with pytest.raises(CutOff):
        actions.do_confirm_census_import(
            world.users["head_office_admin"], CensusImport.objects.get(pk=report["id"]), cut_off
        )
    halfway = world.api("head_office_admin").get(f"/api/v1/census-imports/{report['id']}").json()
    assert (halfway["status"], halfway["processed_rows"], halfway["counts"]["written"]) == ("confirming", 1, 1)
    assert Member.objects.count() == members + 1
    done = world.api("head_office_admin").post(f"/api/v1/census-imports/{report['id']}/confirm").json()
    assert (done["status"], done["processed_rows"]) == ("confirmed", 3)
    assert (done["counts"]["written"], done["counts"]["failed"]) == (3, 0)
    assert Member.objects.count() == members + 3
