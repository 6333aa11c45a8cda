"""``python -m flows.cli``: the `accountflow` command without its console script."""

from flows.cli import app

app()
