"""``gateway privacy erase-request`` and ``erase-approve``: erasure of one person by crypto-shredding (GDPR
art. 17) with four eyes, the same two steps as the privacy-officer API and the console.

One officer requests the erasure, which changes nothing; a different officer approves it, naming the request and
the same person again, within ``GATEWAY_ERASURE_APPROVAL_WINDOW_SECONDS``; only then is the person erased
(:func:`gateway.privacy.erasure.request_erasure`, :func:`~gateway.privacy.erasure.approve_erasure`). Both steps
are audited. The identifier is read from a file or stdin, never from the command line (shell history, ``ps``),
and is never printed. The officers act for the gateway's data protection office
(``GATEWAY_DATA_PROTECTION_OFFICE``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.setup import on_store

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.privacy.erasure import ErasureRequest, ErasureResult
    from gateway.privacy.officer import Officer

app = typer.Typer(help="Privacy-officer tools.", no_args_is_help=True)

_OFFICER_NAME = re.compile(r"[A-Za-z0-9._@\-]{1,64}")
"""An officer's name as recorded in the audit log: short and plain, like a client id."""

IdentifierFile = Annotated[str, typer.Option(
    "--identifier-file", help="File whose first line is the person's codice fiscale, STP or ENI code; '-' reads "
    "it from stdin. The identifier is never taken on the command line.")]


def _read_identifier(source: str) -> str:
    """The first non-empty line of a file, or of stdin for ``-``: never an argument (shell history, ps)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"cannot read the identifier file: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _checked_officer_name(name: str) -> str:
    """The officer's name, which goes to the audit log: plain, at most 64 characters, and naming no person
    (exit 2 otherwise, without echoing it)."""
    from gateway.identifiers import holds_personal_data

    if not _OFFICER_NAME.fullmatch(name) or holds_personal_data(name):
        typer.echo("--officer must be 1 to 64 letters, digits or . _ @ - and must not hold a codice fiscale, STP "
                   "or ENI code: it is recorded in the audit log", err=True)
        raise typer.Exit(2)
    return name


def _officer(name: str, gateway: Gateway) -> Officer:
    """The officer as the privacy office sees them: a member of the gateway's data protection office."""
    from gateway.privacy.officer import Officer

    return Officer(name, gateway.settings.data_protection_office, sees_all=True)


def _refused(verb: str, exc: Exception) -> typer.Exit:
    """Exit 2 with the privacy office's reason (which never echoes the identifier)."""
    typer.echo(f"{verb}: {getattr(exc, 'detail', exc)}", err=True)
    return typer.Exit(2)


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@app.command("erase-request")
def privacy_erase_request(
    identifier_file: IdentifierFile,
    officer: Annotated[str, typer.Option(help="The privacy officer requesting (recorded in the audit log).")],
) -> None:
    """Request the erasure of one person (GDPR art. 17): audited, and nothing changes until a different officer
    approves it with 'gateway privacy erase-approve' within the approval window."""
    from datetime import timedelta

    from gateway.errors import ContractViolation
    from gateway.privacy.office import PrivacyOffice

    name = _checked_officer_name(officer)
    identifier = _read_identifier(identifier_file)

    async def request(gateway: Gateway) -> tuple[ErasureRequest, int]:
        window = gateway.settings.erasure_approval_window_seconds
        pending = await PrivacyOffice.for_gateway(gateway).request_erasure(
            identifier, _officer(name, gateway), "cli", timedelta(seconds=window))
        return pending, window

    try:
        pending, window = on_store(request)
    except ContractViolation as exc:
        raise _refused("not requested", exc) from None
    typer.echo(f"erasure requested: request {pending.request_index} (audit record {pending.request_index}); "
               f"nothing is erased until a different officer approves it within {_duration(window)}, by "
               f"{pending.expires_at.isoformat(timespec='seconds')}:\n"
               f"  gateway privacy erase-approve --request {pending.request_index} --identifier-file FILE "
               "--officer ANOTHER-OFFICER")


@app.command("erase-approve")
def privacy_erase_approve(
    request: Annotated[int, typer.Option(
        "--request", min=0, max=2**63 - 1, help="The number erase-request printed (its audit record).")],
    identifier_file: IdentifierFile,
    officer: Annotated[str, typer.Option(
        help="The privacy officer approving: not the one who requested (recorded in the audit log).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (needed with stdin).")] = False,
) -> None:
    """Approve another officer's erasure request, naming the same person: crypto-shredding (GDPR art. 17),
    irreversible, and audited without naming them. Refused (exit 2) when the request is unknown, lapsed, made by
    the same officer, or for another person."""
    from datetime import timedelta

    from gateway.errors import Conflict, ContractViolation, NotFound, SameOfficer
    from gateway.privacy.office import PrivacyOffice

    name = _checked_officer_name(officer)
    if identifier_file == "-" and not yes:
        typer.echo("reading the identifier from stdin needs --yes (stdin cannot answer the confirmation)", err=True)
        raise typer.Exit(2)
    identifier = _read_identifier(identifier_file)
    if not yes:
        typer.confirm(f"Erase the person of erasure request {request} from the gateway? This cannot be undone.",
                      abort=True)

    async def approve(gateway: Gateway) -> ErasureResult:
        window = timedelta(seconds=gateway.settings.erasure_approval_window_seconds)
        return await PrivacyOffice.for_gateway(gateway).approve_erasure(
            request, identifier, _officer(name, gateway), "cli", window)

    try:
        result = on_store(approve)
    except (ContractViolation, SameOfficer, NotFound, Conflict) as exc:
        raise _refused("not erased", exc) from None
    if result.outcome == "erased":
        typer.echo(f"erased: {result.payloads_purged} stored payload(s) emptied, {result.undelivered_dropped} "
                   f"undelivered message(s) dropped; audit record {result.audit_index}")
    else:
        typer.echo("no-subject: nothing held is linkable to this identifier (never seen, or already erased); "
                   f"audit record {result.audit_index}")
