"""``gateway backfill``: onboard a partner by deciding every record of its bulk export (ALER's CSV, ASST's FHIR
Bulk Data NDJSON) through the live intake, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.setup import on_store, requester


def backfill_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="The partner's bulk export: e.g. ALER's tenancy CSV (one file), ASST's FHIR Bulk Data NDJSON files "
             "(Patient, Encounter, Immunization...).", exists=True, dir_okay=False, readable=True)],
    source: Annotated[str, typer.Option("--from", help="The partner whose export it is (one whose adapter reads "
                                                       "a bulk export, e.g. aler or asst).")],
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Records decided per transaction.")] = 300,
    by: Annotated[str | None, typer.Option(help="Who runs it (recorded as the client id; default cli:<login>).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Onboard a partner: decide every record of its bulk export through the same intake, decisions and audit
    as live traffic. Resumable: after a crash or Ctrl-C, run the same command again; it continues after the
    last committed batch (checkpoint file beside the input), and records already decided are never decided
    twice. Prints a summary by outcome; exit 1 if any record was invalid."""
    import json

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from gateway.pipeline.backfill import BackfillError, BackfillSummary, Source, backfill, checkpoint_path

    console = Console(stderr=True)
    columns = (TextColumn("backfill {task.fields[source]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} records/s"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())

    def run(bar: Progress) -> BackfillSummary:
        task = bar.add_task("backfill", total=None, source=source, rate="-")

        def update(summary: BackfillSummary) -> None:
            rate = f"{summary.done / summary.seconds:,.0f}" if summary.seconds else "-"
            bar.update(task, total=summary.total, completed=summary.skipped + summary.done, rate=rate)

        return on_store(lambda gateway: backfill(gateway.intake, Source(source), inputs,
                                                  batch_size=batch_size, requested_by=requester(by),
                                                  on_progress=update))

    try:
        with Progress(*columns, console=console, disable=not console.is_interactive) as bar:
            summary = run(bar)
    except BackfillError as exc:
        typer.echo(f"not backfilled: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo(f"interrupted: run the same command again to resume from {checkpoint_path(inputs)}", err=True)
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        rate = f"{summary.done / summary.seconds:,.0f} records/s" if summary.seconds else "-"
        typer.echo(f"{summary.done} of {summary.total} records in {summary.seconds:.1f} s ({rate}); "
                   f"{summary.skipped} done by an earlier run")
        for outcome, count in sorted(summary.outcomes.items()):
            typer.echo(f"  {outcome}: {count}")
        for invalid in summary.invalid:
            typer.echo(f"  invalid record {invalid.unit + 1}: {invalid.reason} ({', '.join(invalid.rules)})")
    if summary.outcomes.get("invalid"):
        raise typer.Exit(1)
