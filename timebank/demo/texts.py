"""The demo's service catalogue and the words its orders, needs, calls and goods are written in."""

from __future__ import annotations

from dataclasses import dataclass

from timebank.demo.banks import BANK1, BANK2

# --------------------------------------------------------------------------------------------------------------
# The service catalogue (制单) and the words the timeline uses


@dataclass(frozen=True)
class Service:
    name: str
    tier: str
    category: str
    skill: str | None = None  # a volunteer offering it usually has this skill
    certificate: str = ""  # the certificate the head office requires for it
    description: str = ""


# Services ordered to a recipient's home: the second seed's list, then the first seed's categories.
HOME_SERVICES = (
    Service("餐饮配送", "ordinary", "mutual_care", description="为行动不便的老人配送午餐、晚餐"),
    Service("家庭保洁", "ordinary", "mutual_care", description="打扫卫生、整理房间、清洗衣物被褥"),
    Service("物品代购", "ordinary", "mutual_care", description="代买米面粮油、药品和日用品"),
    Service("日间照料", "ordinary", "mutual_care", description="白天上门照看，协助起居、用餐和服药"),
    Service("紧急救援", "ordinary", "mutual_care", description="老人摔倒或突发不适时就近赶到，协助联系家属和 120"),
    Service("聊天陪伴", "ordinary", "mutual_care", description="上门聊天、散步，缓解孤独"),
    Service("陪同就医", "ordinary", "health_care", description="陪同去医院挂号、就诊、取药"),
    Service("读书读报", "ordinary", "community_education", "读书读报", description="为视力不好的老人读书读报"),
    Service("理发", "ordinary", "mutual_care", "理发", description="上门理发、修面"),
    Service("测量血压", "ordinary", "health_care", "测量血压", description="上门测量血压、血糖并做记录"),
    Service("义务家教", "ordinary", "tutoring", "义务家教", description="为留守儿童辅导功课"),
    Service("管道疏通", "technical", "mutual_care", "管道疏通", description="疏通下水道、马桶和厨房管道"),
    Service("家电维修", "technical", "mutual_care", "家电维修", description="维修电视、冰箱、洗衣机等家电"),
    Service(
        "居住设施维护", "technical", "mutual_care", "水电维修", description="门窗、水龙头、灯具等居住设施的小修小补"
    ),
    Service("电路检修", "technical", "mutual_care", "电路检修", "electrician", "检查和更换老化电线、插座和开关"),
    Service("医疗护理", "professional", "health_care", "医疗护理", "nursing", "换药、护理、康复指导（需护理资质）"),
    Service(
        "心理咨询", "professional", "health_care", "心理咨询", "counselling", "心理疏导和情绪支持（需心理咨询资质）"
    ),
    Service(
        "法律咨询", "professional", "legal_aid", "法律咨询", "legal", "赡养、继承、防诈骗等法律咨询（需法律职业资格）"
    ),
)
# Group activities, posted by the sub-branch as service records.
GROUP_SERVICES = (
    Service("健康讲座", "ordinary", "health_talks", "健康咨询", description="邀请医生讲解慢病防治和合理用药"),
    Service("社区环保清洁", "ordinary", "environment", description="清理楼道、绿地和河道垃圾"),
    Service("社区治安巡逻", "ordinary", "public_safety", "治安巡逻", description="夜间和节假日的治安巡逻"),
    Service("文艺演出", "ordinary", "culture_sports", description="敬老文艺演出"),
    Service("困难家庭走访", "ordinary", "hardship_help", description="走访困难家庭，了解需求、送去慰问"),
    Service("政策宣讲", "ordinary", "community_education", "政策宣讲", description="宣讲养老、医保和防诈骗政策"),
)
SERVICE_BY_NAME = {s.name: s for s in (*HOME_SERVICES, *GROUP_SERVICES)}
# 南充's smaller catalogue (a single community).
BANK2_SERVICES = (
    "餐饮配送", "家庭保洁", "物品代购", "聊天陪伴", "陪同就医", "义务家教", "心理咨询", "法律咨询",
    "健康讲座", "社区环保清洁", "政策宣讲",
)  # fmt: skip
# Every community publishes these; the others are drawn per community.
CORE_MENU = ("餐饮配送", "家庭保洁", "物品代购", "聊天陪伴", "陪同就医", "紧急救援")
MENU_TIMES = (
    "周一至周五 8:00-17:00",
    "每周一、三、五上午",
    "每周二、四下午",
    "周末全天，请提前一天预约",
    "工作日 9:00-11:30",
)
MENU_TIMES_BY_ITEM = {"紧急救援": "全天 24 小时，拨打 12349", "餐饮配送": "每天 11:00-12:00、17:00-18:00"}
POOR = frozenset({"extreme_poverty", "subsistence_allowance", "registered_poor", "severe_disability"})
WELFARE_CATEGORIES = frozenset({"living_alone", "empty_nest", "disabled"})  # the rules' default
CATEGORY_WORDS = {
    "empty_nest": "空巢",
    "left_behind": "留守",
    "disabled": "失能",
    "partly_disabled": "半失能",
    "severe_disability": "重残",
    "extreme_poverty": "特困",
    "subsistence_allowance": "低保",
    "registered_poor": "建档立卡贫困户",
    "advanced_age": "高龄",
    "living_alone": "独居",
}

ORDER_NOTES = {
    "餐饮配送": ("老人牙口不好，饭菜要软烂一些", "中午 11 点半前送到", "少盐少油，老人有高血压"),
    "家庭保洁": ("重点打扫厨房和卫生间", "换季了，帮忙把棉被拆洗一下", "老人腿脚不便，帮忙擦擦窗户"),
    "物品代购": ("帮忙买一袋大米、一桶油", "去药店买降压药（药盒在门口鞋柜上）", "买些鸡蛋和青菜"),
    "日间照料": ("白天子女上班，需要有人照看", "提醒老人按时吃药", "老人有轻度认知障碍，请多留意"),
    "紧急救援": ("老人在家中摔倒，起不来", "老人胸闷气短，家属不在身边", "邻居听到老人呼救"),
    "聊天陪伴": ("老伴去世后不爱说话，多陪陪他", "喜欢听柳琴戏", "想找人下象棋"),
    "陪同就医": ("去区人民医院复查血压", "去中医院拿药，需要有人陪同挂号", "去镇卫生院做体检"),
    "读书读报": ("老人喜欢听时事新闻", "读读孙子寄来的信", ""),
    "理发": ("老人卧床，需要上门理发", "剪短一些就行", ""),
    "测量血压": ("每周量一次血压并记录", "最近头晕，想量量血压血糖", ""),
    "义务家教": ("孙子上四年级，数学跟不上", "留守儿童，父母在外打工", ""),
    "管道疏通": ("厨房下水道堵了", "卫生间马桶不通", ""),
    "家电维修": ("电视没有信号", "洗衣机不转了", "冰箱不制冷"),
    "居住设施维护": ("卫生间水龙头漏水", "屋里的灯不亮了", "门锁坏了关不上"),
    "电路检修": ("插座冒火花，不敢用了", "老房子电线老化，想检查一下", ""),
    "医疗护理": ("腿上伤口需要换药", "术后康复，需要指导锻炼", "长期卧床，需要翻身护理"),
    "心理咨询": ("老伴去世后情绪低落，整夜睡不着", "子女不在身边，常常觉得孤单", ""),
    "法律咨询": ("想咨询遗嘱怎么写才有效", "子女不履行赡养义务", "接到可疑电话，怕被骗"),
}
REVIEWS = {
    5: (
        "服务很细心，屋里收拾得干干净净，还陪我说了会儿话。",
        "志愿者准时上门，态度特别好，谢谢时间银行！",
        "服务周到，有问必答，下次还找她。",
        "像自家孩子一样，老人很满意。",
        "",
    ),
    4: ("挺好的，就是来得晚了一点。", "服务不错，下次还找他。", "总体满意，希望能多来几次。", ""),
    3: ("还行，有些地方没打扫到。", "态度可以，时间有点短。"),
    2: ("来晚了一个小时，也没提前打电话。", "活干得比较马虎。"),
    1: ("志愿者态度不好，老人很不高兴。",),
}
CANCEL_REASONS = (
    "老人住院了，暂时不需要服务",
    "家属已经自己安排好了",
    "老人改了时间，重新下单",
    "重复下单",
    "老人去子女家小住，不在家",
)
NO_VOLUNTEER = "暂无合适的志愿者，已电话告知老人改约"
DECLINE_REASONS = ("这几天要去外地看孙子，接不了", "身体不太舒服，怕耽误老人的事", "时间冲突，那天上午要去医院复查")
NO_SHOW_NOTES = ("志愿者临时有事没有上门，也没有提前说", "志愿者记错了日期，老人等了一上午")
DISPUTE_REASONS = (
    "老人女儿反映：志愿者只干了半个多小时就走了，签退时间却是两个小时",
    "老人说没有打扫卫生间，和约定的不一样",
    "家属反映志愿者提前离开",
)
DISPUTE_CANCEL = "经核实服务没有完成，取消订单，另行安排"
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

# Goods for redemption (name, price in minutes).
GOODS = (
    ("大米（5公斤）", 90),
    ("食用油（5升）", 120),
    ("洗衣液（2公斤）", 60),
    ("毛巾", 20),
    ("香皂", 10),
    ("牙膏", 15),
    ("挂面（2公斤）", 30),
    ("鸡蛋（30枚）", 60),
    ("抽纸（10包）", 40),
    ("老花镜", 60),
)

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
COMPANIES = {
    BANK1: ("台儿庄区福康商贸有限公司", "枣庄市运河人家餐饮有限公司", "台儿庄区惠民超市有限公司"),
    BANK2: ("南充市顺庆区和美家政服务有限公司", "南充市嘉陵江粮油有限公司"),
}
MARKET_PROVIDER = "台儿庄区康宁居家护理服务有限公司"
