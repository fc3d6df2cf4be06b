"""The demo world's donors and the market provider its fund buys services from."""

from __future__ import annotations

from timebank.orgs.demo import BANK1, BANK2

COMPANIES = {
    BANK1: ("台儿庄区福康商贸有限公司", "枣庄市运河人家餐饮有限公司", "台儿庄区惠民超市有限公司"),
    BANK2: ("南充市顺庆区和美家政服务有限公司", "南充市嘉陵江粮油有限公司"),
}
MARKET_PROVIDER = "台儿庄区康宁居家护理服务有限公司"
