"""The demo world's insurers and the certificates that come with an occupation."""

from __future__ import annotations

INSURERS = {
    "group": "中国人寿财产保险股份有限公司枣庄市中心支公司",
    "village": "中国人民财产保险股份有限公司台儿庄支公司",
    "single": "中国平安财产保险股份有限公司枣庄中心支公司",
    "bank2": "中国太平洋财产保险股份有限公司南充中心支公司",
}
CERTIFICATES = {
    "护士": ("nursing", "山东省卫生健康委员会"),
    "退休护士": ("nursing", "山东省卫生健康委员会"),
    "医生": ("medical", "枣庄市卫生健康委员会"),
    "退休医生": ("medical", "枣庄市卫生健康委员会"),
    "心理咨询师": ("counselling", "人力资源和社会保障部职业技能鉴定中心"),
    "律师": ("legal", "山东省司法厅"),
    "电工": ("electrician", "枣庄市应急管理局"),
}
BANK2_ISSUERS = {
    "nursing": "四川省卫生健康委员会",
    "medical": "南充市卫生健康委员会",
    "counselling": "人力资源和社会保障部职业技能鉴定中心",
    "legal": "四川省司法厅",
    "electrician": "南充市应急管理局",
}
