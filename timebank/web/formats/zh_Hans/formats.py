"""Django's zh_Hans MONTH_DAY_FORMAT is "m月j日": the month zero-padded and the day not (09月5日). Ours pads
neither, like its DATE_FORMAT (2016年9月5日)."""

MONTH_DAY_FORMAT = "n月j日"  # 9月5日
