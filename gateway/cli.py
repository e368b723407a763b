"""The ``gateway`` command: demo, serve, worker, migrate, audit verify and rebuild-nodes, statistics publish,
privacy erase, retention run, clients (add, rotate-secret, rotate-key, disable, list), hash-secret, dlq
list/show/replay, backfill.

Each command imports what it needs when it runs, not when the module loads: ``gateway --help`` and
``gateway contracts check`` must not pay for FastAPI, SQLAlchemy, Alembic and every adapter. Only typer and
the standard library are imported at the top; type names used in signatures are imported for type checking only.

Read-only commands (``audit verify``, ``audit keys``) open the store the settings name and never create a store,
a schema or a key (:mod:`gateway.readonly`); they fail naming the store they looked for.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    import uvicorn

    from gateway.audit.verify import VerificationReport
    from gateway.bootstrap import Gateway
    from gateway.contracts.kit import CheckReport
    from gateway.privacy.office import ErasureResult
    from gateway.retention import RetentionReport
    from gateway.settings import GatewaySettings
    from gateway.statistics.publication import Publication
    from gateway.store import Store

T = TypeVar("T")

app = typer.Typer(help="Consent-aware interoperability gateway for Milan's public-housing partners.",
                  no_args_is_help=True)
audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
contracts_app = typer.Typer(help="Published contracts.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
privacy_app = typer.Typer(help="Privacy-officer tools.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")
retention_app = typer.Typer(help="Retention of stored payloads (D-08).", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
clients_app = typer.Typer(help="Partner clients kept in the store: running gateways see changes within seconds.",
                          no_args_is_help=True)
app.add_typer(clients_app, name="clients")
officers_app = typer.Typer(help="Local officer accounts of the privacy console (password and TOTP).",
                           no_args_is_help=True)
app.add_typer(officers_app, name="officers")
tokens_app = typer.Typer(help="Access-token signing.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
statistics_app = typer.Typer(help="Statistics flows (F6, F13): aggregates with small cells suppressed.",
                             no_args_is_help=True)
app.add_typer(statistics_app, name="statistics")


def _settings() -> GatewaySettings:
    from gateway.settings import GatewaySettings

    return GatewaySettings()


def _gateway(log_level: str | None) -> tuple[GatewaySettings, Gateway]:
    """The configured settings and a gateway built from them, logging at ``log_level`` (the configured level
    if None)."""
    from gateway.bootstrap import build
    from gateway.logging import configure_logging

    settings = _settings()
    configure_logging(log_level or settings.log_level)
    return settings, build(settings)


def _on_store(work: Callable[[Gateway], Coroutine[Any, Any, T]], log_level: str | None = "WARNING") -> T:
    """Run ``work`` on a gateway built from the configured settings, its store migrated first and closed
    afterwards whatever happens: the one setup of every command that changes the store."""
    _, gateway = _gateway(log_level)

    async def main() -> T:
        await gateway.store.migrate()
        try:
            return await work(gateway)
        finally:
            await gateway.store.close()

    return asyncio.run(main())


@contextmanager
def _progress(description: str, total: int | None = None) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr (a pulsing one while ``total`` is unknown), drawn only on an interactive
    terminal, so that piped output stays what it was; yields ``update(done, total)``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_interactive) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total if total is not None else bar.tasks[0].total)

        yield update


@contracts_app.command("check")
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
    return content_type or {".csv": "text/csv"}.get(file.suffix, "application/fhir+json"
                                                    if partner == "asst" else "application/json")


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
    with _progress(f"checking {len(files)} files from {partner}", len(files)) as update:
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


@contracts_app.command("generate")
def contracts_generate(
    directory: Annotated[Path, typer.Option(help="Where to write the contracts.")] = Path("contracts"),
) -> None:
    """Regenerate the JSON Schemas, the AsyncAPI and the OpenAPI document under ``contracts/`` from the code."""
    from gateway.api import openapi_document
    from gateway.contracts.publication import write_contracts

    for path in write_contracts(directory, openapi_document):
        typer.echo(str(path))


@app.command()
def demo(
    once: Annotated[bool, typer.Option(help="Run one bounded exchange, print the summary and exit.")] = False,
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1 (a free one if taken).")] = 8080,
) -> None:
    """Run the gateway on embedded defaults with simulated partners exchanging referrals. Its store, bus log and
    keys live under GATEWAY_DATA_DIR/demo (wiped at each start); its logs go to demo.log there."""
    from gateway.demo import run_demo

    settings = _settings()
    settings = settings.model_copy(update={"data_dir": settings.data_dir / "demo", "bus": "embedded",
                                           "database_url": None})
    try:
        summary = asyncio.run(run_demo(settings, once=once, port=port, log_file=settings.data_dir / "demo.log"))
    except KeyboardInterrupt:
        return
    if summary.audit is None or not summary.audit.ok or summary.forwarded == 0:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default GATEWAY_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default GATEWAY_HTTP_PORT).")] = None,
    workers: Annotated[bool, typer.Option(help="Also run the relay and the in.<partner> consumer.")] = True,
) -> None:
    """Run the HTTP API (and, by default, the relay and inbound consumer) with the configured settings.

    The API listens at once: while the gateway waits for its database and bus, /health answers 200 and
    /health/ready 503 (gateway-starting). Exits 1 if they never answer within GATEWAY_STARTUP_WAIT_SECONDS
    or a worker task keeps failing."""
    import uvicorn

    from gateway.api import create_app
    from gateway.api.serving import server_config

    settings, gateway = _gateway(None)

    async def main() -> int:
        config = server_config(create_app(gateway, manage_lifecycle=False), host or settings.http_host,
                               port or settings.http_port, log_config=None)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        starting = asyncio.create_task(gateway.start(workers=workers))
        watch: asyncio.Task[None] | None = None
        try:
            await asyncio.wait({serving, starting}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():  # the server ended first (a signal, or it could not listen)
                starting.cancel()
            elif starting.exception() is None:
                watch = asyncio.create_task(_exit_when_failed(gateway, server))
            else:
                server.should_exit = True
            await asyncio.gather(serving, return_exceptions=True)
            if starting.done() and not starting.cancelled() and starting.exception() is not None:
                await starting  # raise why it did not start
        finally:
            if watch is not None:
                watch.cancel()
            if not starting.done():
                starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await gateway.stop()
        return 1 if gateway.failed is not None and gateway.failed.is_set() else 0

    raise typer.Exit(_run_gateway(main))


async def _exit_when_failed(gateway: Gateway, server: uvicorn.Server) -> None:
    """Stop the HTTP server once a worker task has failed beyond its restart limit (crash-only)."""
    assert gateway.failed is not None
    await gateway.failed.wait()
    server.should_exit = True


def _run_gateway(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a long-running command; the exit code is non-zero when a dependency never answered, a worker
    task gave up or something failed while stopping (each said on stderr, without a traceback)."""
    from gateway.bootstrap import DependencyTimeout, GatewayStopError

    try:
        return asyncio.run(main())
    except DependencyTimeout as exc:
        typer.echo(f"not started: {exc}", err=True)
        return 1
    except GatewayStopError as exc:
        typer.echo(f"stopped with failures: {', '.join(type(e).__name__ for e in exc.exceptions)}", err=True)
        return 1


@app.command()
def worker() -> None:
    """Run only the relay and the inbound consumer (scale out by starting more). Exits non-zero when a task
    keeps failing (after restarts with back-off), so that the process supervisor restarts it whole."""
    import signal

    from gateway.logging import get_logger

    settings, gateway = _gateway(None)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await gateway.start(workers=True)
            get_logger(__name__).info("worker-started", instance=settings.instance_id)
            assert gateway.failed is not None
            waits = {asyncio.create_task(stop.wait()), asyncio.create_task(gateway.failed.wait())}
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            await gateway.stop()
        return 1 if gateway.failed.is_set() else 0

    raise typer.Exit(_run_gateway(main))


@app.command()
def migrate() -> None:
    """Bring the store's schema to the newest migration."""
    async def nothing_more(_: Gateway) -> None:
        return None

    _on_store(nothing_more, log_level=None)


@statistics_app.command("publish")
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
        with _progress(f"publishing {period}"):
            publications = _on_store(publish)
    except ValueError as exc:
        typer.echo(f"not published: {exc}", err=True)
        raise typer.Exit(2) from None
    for p in publications:
        typer.echo(f"{p.flow} {p.period} -> {p.recipient}: " + (
            f"queued {p.message_id} ({p.cells} cells, {p.suppressed} suppressed)" if p.queued
            else f"already published ({p.message_id})"))


# --- audit sub-commands -----------------------------------------------------------------------------------------

@audit_app.command("verify")
def audit_verify(
    keys: Annotated[Path | None, typer.Option(
        "--keys", help="Trust only these C2SP verifier keys (one per line) instead of the keys in the database.",
        exists=True, dir_okay=False, readable=True)] = None,
) -> None:
    """Recompute every hash and checkpoint of the audit log from the database; exit 1 naming the first bad index.

    Checks the hash chain and Merkle root of every record, every signed checkpoint's signatures (with the
    database's public keys, or only those in --keys), and that each checkpoint's root is the root of the
    records at its size. Reads only: exit 2 naming the store it looked for when there is none (it never
    creates a store or a key).
    """
    from rich.console import Console

    from gateway.audit.checkpoint import KeyFormatError
    from gateway.audit.keys import read_verifier_keys
    from gateway.audit.offline import verify_stored_log
    from gateway.logging import configure_logging
    from gateway.readonly import describe_store

    settings = _settings()
    configure_logging("WARNING")
    console = Console()
    try:
        trusted_file = read_verifier_keys(keys) if keys is not None else None
    except KeyFormatError as exc:
        console.print(f"cannot read {keys}: {exc}")
        raise typer.Exit(2) from None

    async def main(store: Store, update: Callable[[int, int | None], None]) -> tuple[VerificationReport, int]:
        try:
            report = await verify_stored_log(store, settings.audit_origin, trusted_file, progress=update)
            async with store.transaction() as tx:
                checkpoints = len(await tx.audit_checkpoints())
        finally:
            await store.close()
        return report, checkpoints

    key_source = str(keys) if keys is not None else "the database"
    store = _existing_store(settings, "audit verify")
    with _progress("verifying the audit log") as update:
        report, checkpoints = asyncio.run(main(store, update))
    where = describe_store(settings)
    for warning in report.warnings:
        console.print(f"warning: {warning}")
    if report.ok and report.size == 0:
        console.print(f"audit log empty: no records yet in the {where}")
        return
    if report.ok:
        console.print(f"audit log intact: {report.size} records, root {report.root_hex}; "
                      f"{report.checkpoints} of {checkpoints} signed checkpoints verified with keys from {key_source}"
                      f" ({where})")
        return
    at = f"at index {report.first_bad_index}" if report.first_bad_index is not None else (
        f"at checkpoint {report.bad_checkpoint}" if report.bad_checkpoint is not None else
        f"at Merkle node level {report.bad_node[0]} index {report.bad_node[1]}" if report.bad_node else "")
    console.print(f"audit log BROKEN {at}: {report.problem}")
    for problem in report.problems[1:]:
        console.print(f"  also: {problem}")
    console.print(f"({where})")
    raise typer.Exit(1)


def _existing_store(settings: GatewaySettings, command: str) -> Store:
    """The store the settings name, for a read-only command; exit 2 naming it when there is none."""
    from gateway.readonly import StoreNotFound, open_existing_store

    try:
        return asyncio.run(open_existing_store(settings))
    except StoreNotFound as exc:
        demo = (settings.data_dir / "demo" / "gateway.sqlite3")
        hint = (f"\nthe demo's store is under {demo.parent}: GATEWAY_DATA_DIR={demo.parent.resolve()} "
                f"gateway {command}") if demo.is_file() else ""
        typer.echo(f"{exc}{hint}", err=True)
        raise typer.Exit(2) from None


@audit_app.command("rebuild-nodes")
def audit_rebuild_nodes() -> None:
    """Store the Merkle subtree hashes a log written before they were stored lacks (proofs then read
    O(log n) rows instead of every leaf hash). Safe while the gateway runs; existing hashes are never
    rewritten. Exit 1 if the leaves do not hash to the head's root (then run `gateway audit verify`)."""
    from gateway.audit.offline import rebuild_stored_nodes

    try:
        with _progress("hashing Merkle subtrees") as update:
            done = _on_store(lambda gateway: rebuild_stored_nodes(gateway.store, progress=update))
    except ValueError as exc:
        typer.echo(f"cannot rebuild the Merkle nodes: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{done.added} Merkle subtree hashes added for {done.size} records")
    if not done.root_matches:
        typer.echo("the stored leaf hashes do not hash to the head's root: run `gateway audit verify`", err=True)
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of the audit log now and print it (a C2SP signed note)."""
    from gateway.audit.checkpoint import KeyFormatError
    from gateway.audit.checkpointer import CheckpointSigningError

    async def sign(gateway: Gateway) -> str:
        return (await gateway.checkpointer.checkpoint_now()).note

    try:
        typer.echo(_on_store(sign), nl=False)
    except (CheckpointSigningError, KeyFormatError) as exc:
        typer.echo(f"cannot sign a checkpoint: {exc}", err=True)
        raise typer.Exit(1) from None


@audit_app.command("rotate-key")
def audit_rotate_key(
    overlap: Annotated[bool, typer.Option(
        help="Keep the previous key co-signing until --finish, so witnesses can add the new key.")] = True,
    finish: Annotated[bool, typer.Option(
        "--finish", help="End a rotation: retire the keys that are still co-signing.")] = False,
    checkpoint: Annotated[bool, typer.Option(help="Sign a checkpoint right after the change.")] = True,
) -> None:
    """Make a new key sign checkpoints from now on (or, with --finish, retire the co-signing keys).

    Old checkpoints keep verifying with the retired keys' public halves, which stay in the database. Print
    the new verifier key for witnesses (also served at GET /v1/audit/keys).
    """
    from gateway.audit.checkpoint import KeyFormatError
    from gateway.audit.checkpointer import CheckpointSigningError

    async def rotate(gateway: Gateway) -> None:
        if finish:
            for key in await gateway.checkpointer.finish_rotation():
                typer.echo(f"retired {key.to_text()}")
        else:
            new = await gateway.checkpointer.rotate_key(overlap=overlap)
            typer.echo(f"new checkpoint key {new.verifier.to_text()}")
        if checkpoint:
            typer.echo((await gateway.checkpointer.checkpoint_now()).note, nl=False)

    try:
        _on_store(rotate)
    except (CheckpointSigningError, KeyFormatError, OSError) as exc:
        typer.echo(f"cannot rotate the audit key: {exc}", err=True)
        raise typer.Exit(1) from None


@audit_app.command("keys")
def audit_keys() -> None:
    """Print every checkpoint verifier key, retired ones included (the format --keys reads). Reads only: exit 2
    naming the store it looked for when there is none."""
    from gateway.logging import configure_logging

    settings = _settings()
    configure_logging("WARNING")

    async def main(store: Store) -> list[str]:
        try:
            async with store.transaction() as tx:
                return [k.to_vkey() for k in await tx.audit_signing_keys()]
        finally:
            await store.close()

    for line in asyncio.run(main(_existing_store(settings, "audit keys"))):
        typer.echo(line)


# --- end of audit sub-commands -----------------------------------------------------------------------------------


# --- privacy and retention sub-commands ------------------------------------------------------------------------

def _read_identifier(source: str) -> str:
    """The first non-empty line of a file, or of stdin for ``-``: never an argument (shell history, ps)."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


@privacy_app.command("erase")
def privacy_erase(
    identifier_file: Annotated[str, typer.Option(
        "--identifier-file", help="File whose first line is the person's codice fiscale, STP or ENI code; "
        "'-' reads it from stdin. The identifier is never taken on the command line.")],
    officer: Annotated[str, typer.Option(help="The privacy officer asking (recorded in the audit log).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (needed with stdin).")] = False,
) -> None:
    """Erase one person by crypto-shredding (GDPR art. 17): irreversible, and audited without naming them."""
    from gateway.errors import ContractViolation
    from gateway.privacy.office import Officer, PrivacyOffice

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
        result = _on_store(erase)
    except ContractViolation as exc:  # the message never echoes the identifier
        typer.echo(f"not erased: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    if result.outcome == "erased":
        typer.echo(f"erased: {result.payloads_purged} stored payload(s) emptied, {result.undelivered_dropped} "
                   f"undelivered message(s) dropped; audit record {result.audit_index}")
    else:
        typer.echo("no-subject: nothing held is linkable to this identifier (never seen, or already erased); "
                   f"audit record {result.audit_index}")


@retention_app.command("run")
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

    with _progress("purging expired payloads"):
        report = _on_store(purge)
    for name, count in report.counts.items():
        typer.echo(f"{name}: {count}")
    typer.echo(f"purged {sum(report.counts.values())} row(s) as of {report.ran_at.isoformat()}; "
               f"audit record {report.audit_index}")


# --- end of privacy and retention sub-commands ------------------------------------------------------------------


def _clients_store_run(work: Callable[[Gateway], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``work`` on the configured store, migrated and seeded with the configured clients file."""
    async def seeded(gateway: Gateway) -> Any:
        await gateway.directory.refresh(force=True)  # stores the clients file's clients it does not hold yet
        return await work(gateway)

    return _on_store(seeded)


def _registered_keys(path: Path) -> str:
    """The JWK Set to register from a public key file (JWK, JWK Set or PEM); exits 2 when it is not acceptable."""
    from gateway.auth.client_keys import public_key_document, registered_key_set

    try:
        return registered_key_set(public_key_document(path.read_text(encoding="utf-8")))
    except OSError as exc:
        typer.echo(f"cannot read {path}: {exc.strerror}", err=True)
    except ValueError as exc:
        typer.echo(f"not a usable public key: {exc}", err=True)
    raise typer.Exit(2)


def _kids(public_jwks: str) -> str:
    import json

    return ", ".join(str(key.get("kid")) for key in json.loads(public_jwks)["keys"])


PUBLIC_KEY_HELP = ("File with the client's public key (JWK, JWK Set or PEM): the client then authenticates only "
                   "with private_key_jwt assertions signed with it, never with a secret.")


@clients_app.command("add")
def clients_add(
    client_id: Annotated[str, typer.Argument(help="The new client's id.")],
    organisation: Annotated[str, typer.Option(help="The partner (or data protection office) it acts for.")],
    role: Annotated[str, typer.Option(help="Its role, e.g. system or privacy-officer.")],
    scope: Annotated[list[str], typer.Option(help="A scope it may obtain; repeat for several.")],
    public_key: Annotated[Path | None, typer.Option(help=PUBLIC_KEY_HELP)] = None,
) -> None:
    """Add a client with a generated secret, printed once (store it in the partner's vault, it is not kept); or,
    with --public-key, a client that authenticates with private_key_jwt and has no secret at all."""
    import secrets as secret_tokens

    from gateway.auth import PartnerClient, hash_client_secret

    secret = None if public_key is not None else secret_tokens.token_urlsafe(32)
    keys = None if public_key is None else _registered_keys(public_key)
    try:
        client = PartnerClient(client_id, None if secret is None else hash_client_secret(secret), organisation, role,
                               frozenset(scope), public_jwks=keys)
    except ValueError as exc:
        typer.echo(f"not added: {exc}", err=True)
        raise typer.Exit(2) from None

    async def add(gateway: Gateway) -> bool:
        async with gateway.store.transaction() as tx:
            return await tx.add_client(client, datetime.now(UTC))

    if not _clients_store_run(add):
        typer.echo(f"not added: a client {client_id!r} exists already", err=True)
        raise typer.Exit(1)
    if keys is not None:
        typer.echo(f"client_id: {client_id}\nauthentication: private_key_jwt\nkeys: {_kids(keys)}")
        return
    typer.echo(f"client_id: {client_id}\nclient_secret: {secret}")


@clients_app.command("rotate-secret")
def clients_rotate_secret(
    client_id: Annotated[str, typer.Argument(help="The client whose secret to replace.")],
) -> None:
    """Give a client a new generated secret, printed once; the old one stops working within seconds. A client
    registered with keys is refused: it never authenticates with a secret (use rotate-key)."""
    import secrets as secret_tokens

    from gateway.auth import hash_client_secret

    secret = secret_tokens.token_urlsafe(32)

    async def rotate(gateway: Gateway) -> bool:
        async with gateway.store.transaction() as tx:
            return await tx.set_client_secret(client_id, hash_client_secret(secret), datetime.now(UTC))

    if not _clients_store_run(rotate):
        typer.echo(f"no client {client_id!r} that authenticates with a secret", err=True)
        raise typer.Exit(1)
    typer.echo(f"client_id: {client_id}\nclient_secret: {secret}")


@clients_app.command("rotate-key")
def clients_rotate_key(
    client_id: Annotated[str, typer.Argument(help="The client whose public keys to replace.")],
    public_key: Annotated[Path, typer.Option(help="File with the client's new public key or keys (JWK, JWK Set or "
                                                  "PEM); list the old key too in a JWK Set to roll over gently.")],
) -> None:
    """Register new public keys for a client: within seconds only assertions signed with them are accepted. A
    client that had a secret switches to private_key_jwt: its secret is dropped and stops working."""
    keys = _registered_keys(public_key)

    async def rotate(gateway: Gateway) -> bool:
        async with gateway.store.transaction() as tx:
            return await tx.set_client_keys(client_id, keys, datetime.now(UTC))

    if not _clients_store_run(rotate):
        typer.echo(f"no client {client_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"client_id: {client_id}\nauthentication: private_key_jwt\nkeys: {_kids(keys)}")


@clients_app.command("disable")
def clients_disable(client_id: Annotated[str, typer.Argument(help="The client to disable.")]) -> None:
    """Disable a client: within seconds it gets no token and its tokens already issued are refused."""

    async def disable(gateway: Gateway) -> bool:
        async with gateway.store.transaction() as tx:
            return await tx.disable_client(client_id, datetime.now(UTC))

    if not _clients_store_run(disable):
        typer.echo(f"no client {client_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"disabled: {client_id}")


@clients_app.command("list")
def clients_list() -> None:
    """Every stored client: id, organisation, role, scopes, how it authenticates (client_secret or
    private_key_jwt), enabled or disabled since when (never a secret)."""

    async def registered(gateway: Gateway) -> list[Any]:
        async with gateway.store.transaction() as tx:
            return await tx.registered_clients()

    for client, disabled_at in _clients_store_run(registered):
        state = "enabled" if disabled_at is None else f"disabled since {disabled_at.isoformat()}"
        typer.echo(f"{client.client_id}\t{client.organisation}\t{client.role}\t{' '.join(sorted(client.scopes))}"
                   f"\t{state}\t{client.auth_method}")


@officers_app.command("add")
def officers_add(
    username: Annotated[str, typer.Argument(help="The officer's sign-in name (letters, digits, . _ -).")],
    organisation: Annotated[str, typer.Option(help="A partner id, or the data protection office's id.")],
    display_name: Annotated[str, typer.Option(help="How the console greets the officer.")],
    role: Annotated[list[str], typer.Option(help="A console role (privacy-officer, erasure-officer); repeat.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="The password (asked for when not given).")],
) -> None:
    """Add a local console account. Prints the TOTP secret and its otpauth:// URI once, for the officer's
    authenticator app: neither is shown again, and the password is kept only as an argon2id hash."""
    import re

    from gateway.console.accounts import CONSOLE_ROLES, new_account

    problems = []
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", username):
        problems.append("the username may hold 1-64 letters, digits, '.', '_' or '-'")
    if unknown := sorted(set(role) - CONSOLE_ROLES):
        problems.append(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(CONSOLE_ROLES))}")
    if len(password) < 12:
        problems.append("the password must have at least 12 characters")
    if problems:
        typer.echo("not added: " + "; ".join(problems), err=True)
        raise typer.Exit(2)

    async def add(gateway: Gateway) -> Any:
        return await new_account(gateway.store, username, display_name, organisation, frozenset(role), password,
                                 datetime.now(UTC))

    made = _clients_store_run(add)
    if made is None:
        typer.echo(f"not added: an officer {username!r} exists already", err=True)
        raise typer.Exit(1)
    typer.echo(f"username: {made.username}\ntotp_secret: {made.totp_secret}\notpauth_uri: {made.otpauth_uri}")


@tokens_app.command("rotate-key")
def tokens_rotate_key() -> None:
    """Sign access tokens with a new key from now on. The old key stays in the JWKS and keeps verifying until its
    tokens have expired (GATEWAY_TOKEN_TTL_SECONDS); keys retired longer ago are dropped. Running gateways take
    the new file within seconds, without a restart."""
    from gateway.auth.keys import read_token_keys, rotated, token_keys_text
    from gateway.secret_files import write_secret_file

    settings = _settings()
    path = settings.token_signing_key_file or settings.data_dir / "token-signing-key.jwk.json"
    try:
        keys = read_token_keys(path.read_text(encoding="utf-8"))
    except OSError as exc:
        typer.echo(f"cannot read the token-signing key file {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    new = rotated(keys, datetime.now(UTC), settings.token_ttl_seconds)
    staged = path.with_name(path.name + ".new")
    write_secret_file(staged, token_keys_text(new))
    staged.replace(path)  # atomically: a gateway re-reading the file never sees half of it
    retired = ", ".join(str(k.kid) for k, _ in new.retired) or "-"
    typer.echo(f"signing with {new.signing.kid}; still published: {retired}")


@app.command("hash-secret")
def hash_secret() -> None:
    """Read a client secret from stdin (or prompt) and print the hash to put in the clients file."""
    import getpass

    from gateway.auth import hash_client_secret

    secret = sys.stdin.readline().strip() if not sys.stdin.isatty() else getpass.getpass("client secret: ")
    typer.echo(hash_client_secret(secret))


# --- dead letters and backfill (issue 9 points 13 and 14) -------------------------------------------------------

dlq_app = typer.Typer(help="Dead letters: list, show and replay them once their cause is fixed.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _requester(by: str | None) -> str:
    import getpass

    return by or f"cli:{getpass.getuser()}"


def _with_bus(gateway: Gateway, settings: GatewaySettings, *, store: bool) -> Callable[
        [Callable[[], Coroutine[Any, Any, Any]]], Any]:
    """Run ``job`` with the gateway's bus started (and its store migrated when ``store``); exit 2 naming the
    embedded bus when it does not exist (a read of dead letters never creates one), when the bus does not answer
    and when no dead letter has the id asked for."""
    from gateway.bus.errors import BusError
    from gateway.pipeline.redrive import DeadLetterNotFound

    def run(job: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
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


@dlq_app.command("list")
def dlq_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's dead letters (aler, asst, comune, fwa).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON lines.")] = False,
) -> None:
    """List dead-lettered messages: id, when, reason and source coordinates (the payload is never kept)."""
    import json

    from rich.console import Console
    from rich.table import Table

    settings, gateway = _gateway("WARNING")
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


@dlq_app.command("show")
def dlq_show(entry_id: Annotated[str, typer.Argument(help="<partner>:<partition>:<offset>, as `dlq list` prints it.")]
             ) -> None:
    """Print one dead-letter entry as JSON: reason, problems, source coordinates, message and request ids."""
    import json

    settings, gateway = _gateway("WARNING")
    entry = _with_bus(gateway, settings, store=False)(lambda: _redrive(gateway).entry(entry_id))
    typer.echo(json.dumps(entry.as_dict(), indent=2))


@dlq_app.command("replay")
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
    settings, gateway = _gateway("WARNING")
    redrive = _redrive(gateway)
    requester = _requester(by)

    async def job() -> list[Any]:
        if replay_all:
            return list(await redrive.replay_all(partner, requester, dry_run=dry_run))
        return [await redrive.replay(entry_id, requester, dry_run=dry_run)]

    results = _with_bus(gateway, settings, store=True)(job)
    for result in results:
        states = ", ".join(f"{m}: {s}" for m, s in result.states.items())
        typer.echo(f"{result.entry.id}: {result.outcome}" + (f" ({states})" if states else "")
                   + (f" — {result.detail}" if result.detail else ""))
    failed = sum(r.outcome in ("still-invalid", "source-gone") for r in results)
    typer.echo(f"{len(results)} replayed{' (dry run)' if dry_run else ''}, {failed} could not go through")
    if failed:
        raise typer.Exit(1)


@app.command("backfill")
def backfill_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="ALER: the tenancy CSV export (one file). ASST: the FHIR Bulk Data NDJSON files (Patient, Encounter, "
             "Immunization...).", exists=True, dir_okay=False, readable=True)],
    source: Annotated[str, typer.Option("--from", help="aler (CSV export) or asst (FHIR Bulk Data NDJSON).")],
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

    from gateway.pipeline.backfill import BackfillError, BackfillSummary, backfill, checkpoint_path

    if source not in ("aler", "asst"):
        typer.echo(f"no backfill from {source!r}: use --from aler (CSV export) or --from asst (FHIR NDJSON)", err=True)
        raise typer.Exit(2)
    console = Console(stderr=True)
    columns = (TextColumn("backfill {task.fields[source]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} records/s"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())

    def run(bar: Progress) -> BackfillSummary:
        task = bar.add_task("backfill", total=None, source=source, rate="-")

        def update(summary: BackfillSummary) -> None:
            rate = f"{summary.done / summary.seconds:,.0f}" if summary.seconds else "-"
            bar.update(task, total=summary.total, completed=summary.skipped + summary.done, rate=rate)

        return _on_store(lambda gateway: backfill(gateway.intake, source, inputs,  # type: ignore[arg-type]
                                                  batch_size=batch_size, requested_by=_requester(by),
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


if __name__ == "__main__":
    app()
