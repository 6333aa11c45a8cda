"""Mask personal data in what is shared widely (run logs, artifacts, alerts): emails keep
their first letter and domain, phone numbers their last two digits, so an operator can
still tell records apart without reading anyone's address."""

from __future__ import annotations

import re

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
PHONE = re.compile(r"(?<![\w])\+?\d[\d ()./-]{6,}\d(?![\w])")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _mask_phone(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = re.sub(r"\D", "", found)
    # Dates and short counts look like digit runs too; phone numbers have 9+ digits.
    if len(digits) < 9 or DATE.match(found):
        return found
    return "***" + digits[-2:]


def mask_personal_data(text: str) -> str:
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return PHONE.sub(_mask_phone, text)
