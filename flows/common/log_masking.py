"""Mask personal data in run logs: logs are shared widely (UI, workers, alerts), contacts'
addresses are not. Emails keep their first letter and domain, phone numbers their last two
digits, so an operator can still tell records apart."""

from __future__ import annotations

import logging

from tasks.common.masking import mask_personal_data

LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "accountflow")


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
