"""``gateway retention run``: purge stored payloads older than their flow's retention (D-08)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.setup import on_store, progress

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.retention import RetentionReport

app = typer.Typer(help="Retention of stored payloads (D-08).", no_args_is_help=True)


@app.command("run")
def retention_run(
    now: Annotated[str | None, typer.Option(
        "--now", help="ISO 8601 time to purge as of (default: now; without an offset, UTC).")] = None,
) -> None:
    """Purge stored payloads older than their flow's retention; the audit log is never purged."""
    from gateway.retention import RetentionJob

    as_of = None
    if now is not None:
        try:
            as_of = datetime.fromisoformat(now)
        except ValueError:
            typer.echo(f"--now is not an ISO 8601 time: {now}", err=True)
            raise typer.Exit(2) from None
        as_of = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
    async def purge(gateway: Gateway) -> RetentionReport:
        return await RetentionJob(gateway.store, gateway.registry, gateway.settings.instance_id).run_once(as_of)

    with progress("purging expired payloads"):
        report = on_store(purge)
    for name, count in report.counts.items():
        typer.echo(f"{name}: {count}")
    typer.echo(f"purged {sum(report.counts.values())} row(s) as of {report.ran_at.isoformat()}; "
               f"audit record {report.audit_index}")
