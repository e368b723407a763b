"""The ``gateway`` command, assembled from one module per command group.

- :mod:`~gateway.cli.running`: ``demo``, ``serve``, ``worker``, ``migrate``;
- :mod:`~gateway.cli.backfill`: ``backfill``;
- :mod:`~gateway.cli.audit`: ``audit verify``, ``rebuild-nodes``, ``checkpoint``, ``rotate-key``, ``keys``;
- :mod:`~gateway.cli.contracts`: ``contracts check``, ``generate``;
- :mod:`~gateway.cli.privacy`: ``privacy erase-request``, ``erase-approve``;
- :mod:`~gateway.cli.retention`: ``retention run``;
- :mod:`~gateway.cli.clients`: ``clients add``, ``rotate-secret``, ``rotate-key``, ``disable``, ``list``, and
  ``hash-secret``;
- :mod:`~gateway.cli.officers`: ``officers add``;
- :mod:`~gateway.cli.tokens`: ``tokens rotate-key``;
- :mod:`~gateway.cli.statistics`: ``statistics publish``;
- :mod:`~gateway.cli.dlq`: ``dlq list``, ``show``, ``replay``.

Every command goes through :mod:`gateway.cli.setup` for its settings, its gateway and its store. Each command
imports what it needs when it runs, not when its module loads: ``gateway --help`` and ``gateway contracts check``
must not pay for FastAPI, SQLAlchemy, Alembic and every adapter. The group modules import only typer, the
standard library and :mod:`gateway.cli.setup` at the top; type names used in signatures are imported for type
checking only.
"""

from __future__ import annotations

import typer

from gateway.cli import (
    audit,
    backfill,
    clients,
    contracts,
    dlq,
    officers,
    privacy,
    retention,
    running,
    statistics,
    tokens,
)

__all__ = ["app"]

app = typer.Typer(help="Consent-aware interoperability gateway for Milan's public-housing partners.",
                  no_args_is_help=True)
app.add_typer(audit.app, name="audit")
app.add_typer(contracts.app, name="contracts")
app.add_typer(privacy.app, name="privacy")
app.add_typer(retention.app, name="retention")
app.add_typer(clients.app, name="clients")
app.add_typer(officers.app, name="officers")
app.add_typer(tokens.app, name="tokens")
app.add_typer(statistics.app, name="statistics")
app.command()(running.demo)
app.command()(running.serve)
app.command()(running.worker)
app.command()(running.migrate)
app.command("hash-secret")(clients.hash_secret)
app.add_typer(dlq.app, name="dlq")
app.command("backfill")(backfill.backfill_command)
