"""Mask personal data in run logs: logs are shared widely (UI, workers, alerts), contacts'
addresses are not. Emails keep their first letter and domain, phone numbers their last two
digits, so an operator can still tell records apart."""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
PHONE = re.compile(r"(?<![\w])\+?\d[\d ()./-]{6,}\d(?![\w])")
LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "accountflow")


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


class PersonalDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        masked = mask_personal_data(record.getMessage())
        record.msg, record.args = masked, ()
        return True


def install() -> None:
    """Attach the filter once to the loggers our flows and tasks write to."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, PersonalDataFilter) for f in logger.filters):
            logger.addFilter(PersonalDataFilter())
