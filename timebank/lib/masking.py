import re

# A run of digits this long is a phone or ID number, never part of a company's name (the fund book's donors and
# providers, the guarantee's provider in the head office's rules).
PERSONAL_NUMBER = re.compile(r"[0-9０-９]{7,}")


def mask_phone(phone: str) -> str:
    """138****5678: enough for a caller to recognise, not enough to dial."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    if len(name) <= 1:
        return name
    return name[0] + "*" * (len(name) - 1)
