"""The demo's census import (人口普查导入), the way staff bring one in: the file is checked (a dry run with its
report), then confirmed. The demo's timeline plans the rows and calls this at its moment."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from timebank.members.models import Member
from timebank.needs.actions import do_confirm_census_import, do_create_census_import
from timebank.needs.census import check_table, read_table
from timebank.orgs.models import Org, User

HEADER = ("姓名", "身份证号", "性别", "出生日期", "联系电话", "家庭住址", "所属社区", "对象类别", "需求描述")


def import_census(actor: User | None, org: Org, filename: str, rows: Sequence[Sequence[str]]) -> list[Member]:
    """Check and confirm a census file of `rows` for `org`; answer the members it wrote, in the file's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    checked = check_table(org, read_table(filename, buffer.getvalue().encode()))
    imp = do_create_census_import(actor, org=org, filename=filename, checked=checked)
    imp = do_confirm_census_import(actor, imp)
    written = {row["row"]: row["member_id"] for row in imp.report["rows"] if row.get("member_id")}
    return [Member.objects.get(pk=written[n]) for n in sorted(written)]


# The words of the demo world's needs (需求): notes by level, items by category, follow-ups and endings.
NEED_NOTES = {
    "essential": ("长期卧床，需要定期上门护理", "失能老人，独自在家无人照料", "特困供养老人，吃饭成问题"),
    "special": ("独居高龄，需要有人定期上门看看", "行动不便，买菜买药困难", "视力不好，需要有人陪同就医"),
    "general": ("希望有人陪着聊聊天", "家里电器老旧，需要检修", "想学用智能手机和子女视频"),
}
NEED_ITEMS = {
    "disabled": ("医疗护理", "日间照料"),
    "partly_disabled": ("陪同就医", "家庭保洁"),
    "living_alone": ("聊天陪伴", "餐饮配送"),
    "empty_nest": ("聊天陪伴", "物品代购"),
    "advanced_age": ("陪同就医", "测量血压"),
    "extreme_poverty": ("物品代购", "家庭保洁"),
    "subsistence_allowance": ("物品代购",),
    "severe_disability": ("医疗护理", "日间照料"),
    "left_behind": ("聊天陪伴", "义务家教"),
    "registered_poor": ("物品代购",),
}
FOLLOW_UPS = (
    "电话回访，老人情况稳定",
    "社区网格员上门查看，已登记具体需求",
    "已联系家属，约定每周上门一次",
    "已报街道，申请临时救助",
    "志愿者队伍已排班",
)
MET_NOTES = ("已安排志愿者定期上门，需求已满足", "订单服务完成，老人满意", "已纳入助餐点配送名单")
CLOSE_REASONS = ("老人已随子女迁居外地", "老人入住养老院", "老人表示暂时不需要")
