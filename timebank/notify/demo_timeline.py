"""The notifications' part of the demo timeline: who is on duty for the urgent alerts."""

from __future__ import annotations

from timebank.lib.demo_plan import LAUNCH, Ref, do, when
from timebank.members.demo_timeline import TimelineBase
from timebank.notify.actions import do_set_duty


class NotifyTimeline(TimelineBase):
    """Staff on duty from launch day."""

    def duty(self) -> None:
        for login in ("staff", "operator", "nc_admin"):
            self.add(do(when(LAUNCH, 17, 30), do_set_duty, Ref.login(login), on_duty=True))
