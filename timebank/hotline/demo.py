"""The words of the demo world's 12349 calls and welfare checks (定期巡访)."""

from __future__ import annotations

CALL_SUMMARIES = {
    "legal_advice": ("咨询子女不履行赡养义务怎么办，已转法律咨询志愿者", "咨询遗嘱公证流程", "咨询房屋过户纠纷"),
    "psychological_advice": ("老伴去世后情绪低落，坐席安抚并预约心理咨询", "长期失眠、焦虑，建议到医院就诊并安排回访"),
    "other": ("咨询怎样加入时间银行当志愿者", "询问积分怎么兑换物品", "询问服务站开放时间"),
    "complaint": ("投诉志愿者迟到", "反映服务时长和实际不符"),
}
WELFARE_OK = ("老人身体状况良好", "老人精神不错，家中一切正常", "血压平稳，饮食正常", "子女刚来看过，情况良好")
WELFARE_CONCERN = (
    "老人近几天腿疼，行走困难",
    "老人说最近吃饭没胃口",
    "家中暖气不热，老人怕冷",
    "老人记性变差，常忘记吃药",
)
