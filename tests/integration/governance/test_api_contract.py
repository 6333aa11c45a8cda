"""The HTTP API does what its OpenAPI schema says: schemathesis against the app on loopback.

Every check but ``positive_data_acceptance`` runs, in all phases, on a bounded number of
examples (30 per operation: about 35 s on an idle 2-core machine). That one is left out
because complaint intake has cross-field rules (an email, a phone or a company; a subject
or a body) that JSON Schema cannot state exactly, so a schema-valid body may rightly get
422.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn

from config.settings import get_settings
from flows.web import create_app

API_TOKEN = "api-token-for-contract-tests-0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app under uvicorn on a loopback port, against the test's database."""
    monkeypatch.setenv("ACCOUNTFLOW_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("ACCOUNTFLOW_FAX__CALLBACK_SECRET", "fax-callback-secret-for-tests")
    get_settings.cache_clear()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield base
    server.should_exit = True
    thread.join(timeout=10)


def _schemathesis(base: str, token: str, tmp_path: Path, *only: str) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "30",
            "--workers",
            "1",
            "--seed",
            "25",
            "--no-color",
            "--generation-database",
            "none",
            "--report-dir",
            str(tmp_path / "report"),
            "--header",
            f"Authorization: Bearer {token}",
            *only,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_undocumented_status_or_method(served: str, tmp_path: Path) -> None:
    from tasks.governance.service import issue_member_token

    _schemathesis(served, API_TOKEN, tmp_path)
    # The team's routes again, as the head: past the token, into the rules.
    head = issue_member_token(None, "helena")
    _schemathesis(served, head, tmp_path, "--include-path-regex", "^/(team|audit)")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_team_over_http_acts_as_the_tokens_member(served: str) -> None:
    from tasks.governance.service import issue_member_token

    head = issue_member_token(None, "helena")
    ana = issue_member_token(head, "ana")
    body = {"member_id": "dora", "name": "Dora Reis"}
    assert requests.post(f"{served}/team/appoint", json=body, timeout=10).status_code == 401
    refused = requests.post(
        f"{served}/team/appoint", json=body, headers={"Authorization": f"Bearer {ana}"}, timeout=10
    )
    assert refused.status_code == 403 and "only the head" in refused.json()["detail"]
    done = requests.post(
        f"{served}/team/appoint", json=body, headers={"Authorization": f"Bearer {head}"}, timeout=10
    )
    assert done.status_code == 201 and done.json()["author"] == "helena"
    gone = requests.post(
        f"{served}/team/dismiss",
        json={"member_id": "nobody"},
        headers={"Authorization": f"Bearer {head}"},
        timeout=10,
    )
    assert gone.status_code == 404
    trail = requests.get(f"{served}/audit", headers={"Authorization": f"Bearer {head}"}, timeout=10)
    assert [r["action"] for r in trail.json()] == ["team.token", "team.token", "team.appoint"]
    hidden = requests.get(f"{served}/audit", headers={"Authorization": f"Bearer {ana}"}, timeout=10)
    assert hidden.status_code == 403


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_options_and_other_methods_get_405_naming_every_supported_method(served: str) -> None:
    for method in ("OPTIONS", "PUT", "DELETE"):
        answer = requests.request(method, f"{served}/u/some-token", timeout=10)
        assert answer.status_code == 405
        assert answer.headers["Allow"] == "GET, POST"
    assert requests.options(f"{served}/complaints", timeout=10).headers["Allow"] == "POST"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_every_operation_documents_auth_permission_existence_and_validation(served: str) -> None:
    schema = requests.get(f"{served}/openapi.json", timeout=10).json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"401", "403", "404", "422"} <= documented, (method, path, documented)
