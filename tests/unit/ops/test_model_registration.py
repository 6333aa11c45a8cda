"""Each capability's models, imported alone, declare a schema SQLAlchemy can work with (every
table their foreign keys name); ``connectors.database.models`` declares every table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import connectors.database.models as whole_schema

MODELS = sorted(p.stem for p in Path(whole_schema.__file__).parent.glob("*_models.py"))

# Resolving a foreign key's column raises NoReferencedTableError when its table is not
# declared; a flush orders tables the same way sort_tables does.
_CHECK = """
import connectors.database.{module}
from sqlalchemy.orm import configure_mappers
from sqlalchemy.sql.ddl import sort_tables
from connectors.database.base import Base
tables = list(Base.metadata.tables.values())
for table in tables:
    for key in table.foreign_keys:
        key.column
sort_tables(tables)
configure_mappers()
print(len(tables))
"""


def test_the_whole_schema_lists_every_capability_s_models() -> None:
    assert sorted(whole_schema.__all__) == MODELS


@pytest.mark.parametrize("module", MODELS)
def test_a_capability_s_models_imported_alone_resolve_every_foreign_key(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHECK.format(module=module)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
