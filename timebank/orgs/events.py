"""What the org tree tells other apps. Published inside the action's transaction (timebank.lib.events);
the apps above subscribe in their `AppConfig.ready()`, so orgs imports none of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timebank.orgs.models import Org, Rules, User


@dataclass(frozen=True)
class BankOpened:
    """A head office (a new time bank) was created, with its rules. The ledger opens the bank's system
    accounts."""

    bank: Org


@dataclass(frozen=True)
class RulesChanged:
    """A head office changed its rules: `before` and `after` hold the changed fields' old and new values. The
    notices app publishes the automatic notice."""

    actor: User | None
    rules: Rules
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True)
class PasswordReset:
    """Staff gave a login a temporary password. The notify app tells the member and their relatives (a reset
    they did not ask for is how a taken-over login is noticed)."""

    actor: User | None
    login: User


@dataclass(frozen=True)
class SmsCodeLogin:
    """Someone logs in with a phone number and the code sent to it by SMS (`POST /api/v1/auth/token`). The
    notify app, which sent the code, checks it (counting a wrong one) and answers the login of the member whose
    phone it is, creating it on their first such login; it answers nothing when the code does not open a login.
    Published inside the token request's transaction."""

    phone: str
    code: str
