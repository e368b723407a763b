"""``gateway statistics publish``: queue a month's aggregates of the statistics flows (F6, F13)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.setup import on_store, progress

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.statistics.publication import Publication

app = typer.Typer(help="Statistics flows (F6, F13): aggregates with small cells suppressed.", no_args_is_help=True)


@app.command("publish")
def statistics_publish(
    period: Annotated[str, typer.Option(help="The month to publish, YYYY-MM; it must have ended.")],
    flow: Annotated[str | None, typer.Option(help="Only this flow: F6 or F13 (default: all).")] = None,
) -> None:
    """Queue the month's aggregates for every recipient of the statistics flows; the relay delivers them.
    A month already published is not published again."""
    from gateway.statistics.publication import StatisticsPublisher

    async def publish(gateway: Gateway) -> list[Publication]:
        settings = gateway.settings
        return await StatisticsPublisher(gateway.store, gateway.registry, settings.topics, settings.instance_id,
                                         settings.statistics_threshold).publish(period, flow)

    try:
        with progress(f"publishing {period}"):
            publications = on_store(publish)
    except ValueError as exc:
        typer.echo(f"not published: {exc}", err=True)
        raise typer.Exit(2) from None
    for p in publications:
        typer.echo(f"{p.flow} {p.period} -> {p.recipient}: " + (
            f"queued {p.message_id} ({p.cells} cells, {p.suppressed} suppressed)" if p.queued
            else f"already published ({p.message_id})"))
