"""``gateway privacy erase``: erase one person by crypto-shredding (GDPR art. 17), the identifier read from a
file or stdin, never from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.setup import on_store

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.privacy.erasure import ErasureResult

app = typer.Typer(help="Privacy-officer tools.", no_args_is_help=True)


def _read_identifier(source: str) -> str:
    """The first non-empty line of a file, or of stdin for ``-``: never an argument (shell history, ps)."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


@app.command("erase")
def privacy_erase(
    identifier_file: Annotated[str, typer.Option(
        "--identifier-file", help="File whose first line is the person's codice fiscale, STP or ENI code; "
        "'-' reads it from stdin. The identifier is never taken on the command line.")],
    officer: Annotated[str, typer.Option(help="The privacy officer asking (recorded in the audit log).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (needed with stdin).")] = False,
) -> None:
    """Erase one person by crypto-shredding (GDPR art. 17): irreversible, and audited without naming them."""
    from gateway.errors import ContractViolation
    from gateway.privacy.office import PrivacyOffice
    from gateway.privacy.officer import Officer

    try:
        identifier = _read_identifier(identifier_file)
    except OSError as exc:
        typer.echo(f"cannot read the identifier file: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    if not yes:
        typer.confirm("Erase this person from the gateway? This cannot be undone.", abort=True)
    async def erase(gateway: Gateway) -> ErasureResult:
        return await PrivacyOffice.for_gateway(gateway).erase(identifier, Officer(officer, "gateway-privacy"), "cli")

    try:
        result = on_store(erase)
    except ContractViolation as exc:  # the message never echoes the identifier
        typer.echo(f"not erased: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    if result.outcome == "erased":
        typer.echo(f"erased: {result.payloads_purged} stored payload(s) emptied, {result.undelivered_dropped} "
                   f"undelivered message(s) dropped; audit record {result.audit_index}")
    else:
        typer.echo("no-subject: nothing held is linkable to this identifier (never seen, or already erased); "
                   f"audit record {result.audit_index}")
