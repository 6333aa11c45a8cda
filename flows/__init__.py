"""Flows, the CLI and deployment serving. Importing the package masks personal data in
run logs wherever flows run (CLI, served deployments, workers)."""

from flows.common.log_masking import install as _install_log_masking

_install_log_masking()
