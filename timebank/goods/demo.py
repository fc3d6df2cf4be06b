"""The goods the demo world's outlets offer for redemption."""

from __future__ import annotations

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
