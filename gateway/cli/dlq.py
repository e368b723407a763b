"""``gateway dlq``: list, show and replay dead-lettered messages once their cause is fixed (a read never creates
the embedded bus)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli.setup import built_gateway, requester

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.settings import GatewaySettings

app = typer.Typer(help="Dead letters: list, show and replay them once their cause is fixed.", no_args_is_help=True)


def _with_bus(gateway: Gateway, settings: GatewaySettings, *, store: bool) -> Callable[
        [Callable[[], Coroutine[Any, Any, Any]]], Any]:
    """Run ``job`` with the gateway's bus started (and its store migrated when ``store``); exit 2 naming the
    embedded bus when it does not exist (a read of dead letters never creates one), when the bus does not answer
    and when no dead letter has the id asked for."""
    from gateway.bus.errors import BusError
    from gateway.pipeline.redrive import DeadLetterNotFound

    def run(job: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        import asyncio

        if settings.bus == "embedded" and not settings.embedded_bus_path().is_file():
            typer.echo(f"no embedded bus at {settings.embedded_bus_path()}: nothing was ever dead-lettered here",
                       err=True)
            raise typer.Exit(2)

        async def main() -> Any:
            try:
                if store:
                    await gateway.store.migrate()
                await gateway.bus.start()
                return await job()
            finally:
                await gateway.bus.stop()
                await gateway.store.close()

        try:
            return asyncio.run(main())
        except BusError as exc:
            typer.echo(f"the bus did not answer: {exc}", err=True)
            raise typer.Exit(2) from None
        except DeadLetterNotFound as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None

    return run


def _redrive(gateway: Gateway) -> Any:
    from gateway.pipeline.redrive import Redrive

    return Redrive(gateway.bus, gateway.intake, gateway.settings.topics, sorted(gateway.intake.decoders),
                   gateway.settings.instance_id)


@app.command("list")
def dlq_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's dead letters (aler, asst, comune, fwa).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON lines.")] = False,
) -> None:
    """List dead-lettered messages: id, when, reason and source coordinates (the payload is never kept)."""
    import json

    from rich.console import Console
    from rich.table import Table

    settings, gateway = built_gateway("WARNING")
    entries = _with_bus(gateway, settings, store=False)(lambda: _redrive(gateway).entries(partner))
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry.as_dict()))
        return
    table = Table("id", "at", "reason", "message id", "source")
    for entry in entries:
        source = f"{entry.source.topic}[{entry.source.partition}]@{entry.source.offset}" if entry.source else "HTTP"
        table.add_row(entry.id, entry.at or "", entry.reason, entry.message_id or "", source)
    Console().print(table)
    typer.echo(f"{len(entries)} dead letter(s)")


@app.command("show")
def dlq_show(entry_id: Annotated[str, typer.Argument(help="<partner>:<partition>:<offset>, as `dlq list` prints it.")]
             ) -> None:
    """Print one dead-letter entry as JSON: reason, problems, source coordinates, message and request ids."""
    import json

    settings, gateway = built_gateway("WARNING")
    entry = _with_bus(gateway, settings, store=False)(lambda: _redrive(gateway).entry(entry_id))
    typer.echo(json.dumps(entry.as_dict(), indent=2))


@app.command("replay")
def dlq_replay(
    entry_id: Annotated[str | None, typer.Argument(help="The entry to replay (or --all with --partner).")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter of --partner.")] = False,
    partner: Annotated[str | None, typer.Option(help="With --all: the partner whose dead letters to replay.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen; decide and audit nothing.")]
    = False,
    by: Annotated[str | None, typer.Option(help="Who asks, for the audit record (default cli:<login name>).")]
    = None,
) -> None:
    """Put dead-lettered messages back through the intake once their cause is fixed: each is read back from its
    source topic, decided (a message already decided is not decided again) and the replay audited with who
    asked. Exit 1 if any could not go through (still invalid, source gone)."""
    if (entry_id is None) == (not replay_all) or (replay_all and partner is None):
        typer.echo("give one entry id, or --all with --partner", err=True)
        raise typer.Exit(2)
    settings, gateway = built_gateway("WARNING")
    redrive = _redrive(gateway)
    asked_by = requester(by)

    async def job() -> list[Any]:
        if replay_all:
            return list(await redrive.replay_all(partner, asked_by, dry_run=dry_run))
        return [await redrive.replay(entry_id, asked_by, dry_run=dry_run)]

    results = _with_bus(gateway, settings, store=True)(job)
    for result in results:
        states = ", ".join(f"{m}: {s}" for m, s in result.states.items())
        typer.echo(f"{result.entry.id}: {result.outcome}" + (f" ({states})" if states else "")
                   + (f" — {result.detail}" if result.detail else ""))
    failed = sum(r.outcome in ("still-invalid", "source-gone") for r in results)
    typer.echo(f"{len(results)} replayed{' (dry run)' if dry_run else ''}, {failed} could not go through")
    if failed:
        raise typer.Exit(1)
