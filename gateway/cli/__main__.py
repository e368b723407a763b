"""``python -m gateway.cli``: the ``gateway`` command without its console script."""

from gateway.cli import app

app()
