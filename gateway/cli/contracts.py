"""``gateway contracts``: check a partner message (or a folder of them) against the published contract and say
what the gateway would do with it; regenerate the published contracts from the code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.setup import progress

if TYPE_CHECKING:
    from gateway.contracts.kit import CheckReport

app = typer.Typer(help="Published contracts.", no_args_is_help=True)


@app.command("check")
def contracts_check(
    file: Annotated[Path, typer.Argument(
        help="The message to check (JSON, FHIR JSON or ALER's CSV export), or a folder: every file in it "
             "(but golden examples' *.expected.json).",
        exists=True)],
    partner: Annotated[str, typer.Option("--from", help="The partner that would send it: aler, asst, comune, fwa.")],
    content_type: Annotated[str | None, typer.Option(help="Media type; guessed from the file name if omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate a partner message against the published contract and explain what the gateway would do with
    it. Exit 1 if it would be refused. Given a folder, check every file in it (with a progress bar), print the
    refused ones and a count, and exit 1 if any would be refused."""
    from gateway.contracts.kit import check_message
    from gateway.policy import load_registry

    if file.is_dir():
        _check_folder(file, partner, content_type, as_json)
        return
    report = check_message(partner, file.read_bytes(), _media_type(file, partner, content_type), load_registry())
    if as_json:
        import json

        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print_check(report)
    if not report.valid:
        raise typer.Exit(1)


def _media_type(file: Path, partner: str, content_type: str | None) -> str:
    """The content type given, else ``text/csv`` for a ``.csv`` file, else the one the partner sends with."""
    if content_type or file.suffix == ".csv":
        return content_type or "text/csv"
    from gateway.partners import descriptor

    known = descriptor(partner)  # None: the kit answers an unknown partner itself
    return known.content_type if known is not None else "application/json"


def _check_folder(folder: Path, partner: str, content_type: str | None, as_json: bool) -> None:
    import json

    from rich.markup import escape

    from gateway.contracts.kit import check_message
    from gateway.policy import load_registry

    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and not p.name.endswith(".expected.json"))  # golden examples' expected reports
    if not files:
        typer.echo(f"no file to check in {folder}", err=True)
        raise typer.Exit(2)
    registry = load_registry()
    reports: list[tuple[Path, CheckReport]] = []
    with progress(f"checking {len(files)} files from {partner}", len(files)) as update:
        for done, path in enumerate(files, 1):
            reports.append((path, check_message(partner, path.read_bytes(), _media_type(path, partner, content_type),
                                                registry)))
            update(done, None)
    refused = [(path, report) for path, report in reports if not report.valid]
    if as_json:
        typer.echo(json.dumps([{"file": str(path), **report.as_dict()} for path, report in reports], indent=2))
    else:
        from rich.console import Console

        console = Console()
        for path, report in refused:
            console.print(f"[bold red]refused[/bold red] {escape(str(path))}: {len(report.problems)} problem(s)")
            for problem in report.problems:
                console.print(escape(f"  {problem['pointer'] or '(document)'}  [{problem['rule']}]  "
                                     f"{problem['message']}"))
        console.print(f"checked {len(reports)} files: {len(reports) - len(refused)} valid, {len(refused)} refused")
    if refused:
        raise typer.Exit(1)


def _print_check(report: CheckReport) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if not report.valid:
        console.print(f"[bold red]refused[/bold red]: {len(report.problems)} problem(s)")
        for problem in report.problems:
            console.print(escape(f"  {problem['pointer'] or '(document)'}  [{problem['rule']}]  {problem['message']}"))
        return
    for message in report.messages:
        console.print(f"[bold green]valid[/bold green] {message['message_type']} {message['message_id']} "
                      f"(purpose {message['purpose']})")
        for r in message["recipients"]:
            consent = "explicit consent needed" if r["explicit_consent"] else (
                "consent needed" if r["consent_required"] else f"legal basis: {r['legal_basis']}")
            console.print(f"  -> {r['recipient'] or '(no recipient)'}: {r['outcome']}"
                          f"{' (' + r['reason'] + ')' if r['reason'] else ''}; flow {r['flow']}; {consent}")
            if r["crossing"]:
                console.print("     crosses: " + ", ".join(r["crossing"]))
            if r["tokenised"]:
                console.print("     as opaque tokens: " + ", ".join(r["tokenised"]))
            if r["dropped"]:
                console.print("     dropped: " + ", ".join(r["dropped"]))


@app.command("generate")
def contracts_generate(
    directory: Annotated[Path, typer.Option(help="Where to write the contracts.")] = Path("contracts"),
) -> None:
    """Regenerate the JSON Schemas, the AsyncAPI and the OpenAPI document under ``contracts/`` from the code."""
    from gateway.api import openapi_document
    from gateway.contracts.publication import write_contracts

    for path in write_contracts(directory, openapi_document):
        typer.echo(str(path))
