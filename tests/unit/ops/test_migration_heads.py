"""The schema check's own reading of the migration heads agrees with Alembic's."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from connectors.database.migrate import _script_heads, alembic_config


def test_heads_read_from_the_scripts_are_alembics_heads() -> None:
    expected = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert set(_script_heads()) == expected
