"""Load policy YAML into pydantic models, with errors a person can act on.

A broken policy must say which file, which key and what was expected, because the people
editing these files are ops staff, not the authors of the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class PolicyError(ValueError):
    """A policy file is missing, unreadable or invalid."""


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_policy(path: Path, model: type[M]) -> M:
    """Parse ``path`` as YAML and validate it against ``model``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"key '{_key(err['loc'])}': {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise PolicyError(f"{path}: {problems}") from exc
