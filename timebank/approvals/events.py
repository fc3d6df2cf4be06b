"""What four eyes tells the apps whose credits wait here. Subscribers register in their `AppConfig.ready()`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from timebank.approvals.models import Approval
from timebank.orgs.models import User


@dataclass(frozen=True)
class ApprovalDecided:
    """A second person decided a waiting credit. Published inside `do_approve` / `do_reject`, under the
    approval's row lock, after the checks and before the approval's new state and its audit entry are written.

    Approved: the app that owns the approval's kind posts the kept request through its own posting half
    (adjustment: the ledger; service record: orders; activity close: teams; award bonus: evaluation) and
    answers [the id of the transaction it posted]; exactly one app answers for each kind. Rejected: nothing
    moves, subscribers answer nothing."""

    approval: Approval
    approved: bool
    actor: User


@dataclass(frozen=True)
class CreditsCounted:
    """A question rather than news: four eyes counts what `member_id` was credited outside orders since
    `since` (positive adjustments, service records, activity credits, award bonuses). The ledger answers
    [the minutes posted]; what still waits here is added by four eyes itself. Nothing is written."""

    member_id: int
    since: dt.datetime
