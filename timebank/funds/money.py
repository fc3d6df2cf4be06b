"""Money in yuan: `Decimal` with two places, checked the same way at the API and in the actions."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Invalid

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal(100_000_000)
# Plain decimal text only: no exponent, sign, spaces, underscores or a bare point ("1e3", " 5", "5.", ".5").
MONEY_TEXT = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?")


def parse_money(value: object) -> Decimal:
    """A positive amount of at most 100,000,000.00 yuan with at most two decimal places.

    Accepts an integer or a decimal string ("12.30"); refuses floats, which cannot hold cents exactly.
    Raises ValueError so that the API's validation reports the field."""
    if isinstance(value, (bool, float)):
        raise ValueError('send the amount as a string such as "12.30", not a floating-point number')
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        if not MONEY_TEXT.fullmatch(value):
            raise ValueError("the amount must look like 12 or 12.30 (at most two decimal places)")
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    else:
        raise ValueError("the amount must be a decimal string")
    if not amount.is_finite():
        raise ValueError("the amount must be finite")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("at most two decimal places")
    if amount <= 0:
        raise ValueError("the amount must be greater than zero")
    if amount > MAX_AMOUNT:
        raise ValueError("the amount is too large")
    try:
        return amount.quantize(CENT)
    except InvalidOperation:
        raise ValueError("the amount is not a valid decimal") from None


def check_amount(value: object, field: str = "amount") -> Decimal:
    """The actions' own check: the same rule as the API, as a 422 with a Chinese message."""
    try:
        return parse_money(value)
    except ValueError:
        raise Invalid(_("金额应大于 0、不超过 1 亿元，最多两位小数。"), fields={field: "invalid_amount"}) from None


def yuan(amount: Decimal) -> str:
    """Fixed two-place text: "0.30", never "0.3" or "3E-1"."""
    return f"{amount.quantize(CENT):f}"
