"""Installs come from the lock: uv.lock was resolved from this pyproject.toml (every
dependency and range, dev tools included), and `make setup`, which CI runs, installs it
exactly and refuses a lock that no longer matches."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[tuple[str, str, str | None]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [(r, None) for r in project["dependencies"]]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        wanted += [(r, extra) for r in reqs]
    out = set()
    for text, extra in wanted:
        req = Requirement(text)
        out.add((_normal(req.name), str(req.specifier), extra))
    return out


def _locked() -> set[tuple[str, str, str | None]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    [root] = [p for p in lock["package"] if p["name"] == "accountflow"]
    out = set()
    for dep in root["metadata"]["requires-dist"]:
        spec = str(Requirement(f"x{dep.get('specifier', '')}").specifier)
        out.add(
            (_normal(dep["name"]), spec, dep.get("marker", "").partition("== '")[2][:-1] or None)
        )
    return out


def test_the_lock_was_resolved_from_this_pyproject() -> None:
    assert _locked() == _declared(), "run `make lock` and commit uv.lock"


def test_setup_and_ci_install_exactly_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "sync --locked --extra dev" in makefile
    assert re.search(r"^\$\(STAMP\): pyproject.toml uv.lock", makefile, re.MULTILINE)
    assert "make setup" in (ROOT / ".ci" / "run").read_text()
