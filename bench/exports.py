"""Export benchmark: peak Python memory and time of the streaming .xlsx writer at 10k and 100k rows.

    .venv/bin/python bench/exports.py [--rows 10000,100000]

Rows are member-register-shaped (12 columns, masked names and phones, dates) and produced by a generator, so
the figure is the writer's own memory: it should stay flat from 10k to 100k rows (openpyxl's write-only
workbook spills rows to a temporary file). The database side of an export iterates with `.iterator(chunk_size)`
and is flat by construction. No database is needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

# Import the project from the repository.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "timebank.settings")

import django  # noqa: E402

django.setup()

from timebank.exports.xlsx import Column, write_xlsx  # noqa: E402
from timebank.lib.masking import mask_name, mask_phone  # noqa: E402

COLUMNS = [
    Column("会员编号", lambda r: r[0]),
    Column("姓名", lambda r: r[1], mask=mask_name),
    Column("性别", lambda r: "女"),
    Column("出生年份", lambda r: 1950 + r[0] % 20),
    Column("电话", lambda r: r[2], mask=mask_phone),
    Column("身份证号（已遮挡）", lambda r: "3704**********123X"),
    Column("地址", lambda r: "运河街道 1 号", mask=lambda _v: "***"),
    Column("所属机构", lambda r: "顺河社区"),
    Column("志愿者", lambda r: "是"),
    Column("服务对象", lambda r: ""),
    Column("状态", lambda r: "正常"),
    Column("登记时间", lambda r: dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=r[0])),
]


def rows(n: int) -> Iterator[tuple[int, str, str]]:
    for i in range(n):
        yield i, f"王秀英{i % 100}", f"138{i:08d}"[:11]


def measure(n: int) -> tuple[float, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        write_xlsx(out, title="bench", columns=COLUMNS, rows=rows(n), reveal=False)
        size = out.tell()
    elapsed = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="10000,100000")
    args = parser.parse_args()
    print(f"{'rows':>8} {'seconds':>8} {'rows/s':>8} {'peak MiB':>9} {'file MiB':>9}")
    for n in (int(x) for x in args.rows.split(",")):
        elapsed, peak, size = measure(n)
        print(f"{n:>8} {elapsed:>8.2f} {n / elapsed:>8.0f} {peak:>9.2f} {size / 2**20:>9.2f}")


if __name__ == "__main__":
    main()
