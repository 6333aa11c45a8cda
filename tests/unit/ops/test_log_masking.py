"""Run logs never carry a contact's full email address or phone number."""

from __future__ import annotations

import logging

import pytest

from flows.common.log_masking import install, mask_personal_data


def test_emails_and_phones_are_masked_but_stay_distinguishable() -> None:
    text = "sent to maria.souza@acme.com.br and +55 11 98765-4321; batch 12 of 2026-04-07"
    assert mask_personal_data(text) == (
        "sent to m***@acme.com.br and ***21; batch 12 of 2026-04-07"
    )


def test_the_filter_masks_what_the_task_run_logger_writes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install()
    logger = logging.getLogger("prefect.task_runs")
    with caplog.at_level(logging.INFO, logger="prefect.task_runs"):
        logger.info("opt-out from %s (%s)", "joao@cliente.com", "11987654321")
    assert "joao@" not in caplog.text and "11987654321" not in caplog.text
    assert "j***@cliente.com" in caplog.text and "***21" in caplog.text
