"""The ``gateway`` command: demo, serve, worker, migrate, audit verify, hash-secret."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from gateway.api import create_app, openapi_document
from gateway.audit.verify import verify_log
from gateway.auth import hash_client_secret
from gateway.bootstrap import build
from gateway.demo import run_demo
from gateway.logging import configure_logging, get_logger
from gateway.publication import write_contracts
from gateway.settings import GatewaySettings

log = get_logger(__name__)
app = typer.Typer(help="Consent-aware interoperability gateway for Milan's public-housing partners.",
                  no_args_is_help=True)
audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
contracts_app = typer.Typer(help="Published contracts.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")


@contracts_app.command("generate")
def contracts_generate(
    directory: Annotated[Path, typer.Option(help="Where to write the contracts.")] = Path("contracts"),
) -> None:
    """Regenerate the JSON Schemas and the OpenAPI document under ``contracts/`` from the code."""
    for path in write_contracts(directory, openapi_document):
        typer.echo(str(path))


@app.command()
def demo(
    once: Annotated[bool, typer.Option(help="Run one bounded exchange, print the summary and exit.")] = False,
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1 (a free one if taken).")] = 8080,
) -> None:
    """Run the gateway on embedded defaults with simulated partners exchanging referrals."""
    settings = GatewaySettings()
    settings = settings.model_copy(update={"data_dir": settings.data_dir / "demo", "bus": "embedded",
                                           "database_url": None})
    configure_logging("WARNING")
    try:
        summary = asyncio.run(run_demo(settings, once=once, port=port))
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
    """Run the HTTP API (and, by default, the relay and inbound consumer) with the configured settings."""
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    gateway = build(settings)

    async def main() -> None:
        await gateway.start(workers=workers)
        config = uvicorn.Config(create_app(gateway, manage_lifecycle=False), host=host or settings.http_host,
                                port=port or settings.http_port, log_config=None, proxy_headers=True)
        try:
            await uvicorn.Server(config).serve()
        finally:
            await gateway.stop()

    asyncio.run(main())


@app.command()
def worker() -> None:
    """Run only the relay and the inbound consumer (scale out by starting more)."""
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    gateway = build(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await gateway.start(workers=True)
        log.info("worker-started", instance=settings.instance_id)
        try:
            await stop.wait()
        finally:
            await gateway.stop()

    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Bring the store's schema to the newest migration."""
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    gateway = build(settings)

    async def main() -> None:
        await gateway.store.migrate()
        await gateway.store.close()

    asyncio.run(main())


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every hash of the audit log from the database; exit 1 and name the first bad index."""
    settings = GatewaySettings()
    configure_logging("WARNING")
    gateway = build(settings)
    console = Console()

    async def main() -> bool:
        await gateway.store.migrate()
        async with gateway.store.transaction() as tx:
            head = await tx.audit_head()
            entries = await tx.audit_entries(0, head.size + 1)
        await gateway.store.close()
        report = verify_log(entries, head)
        if report.ok:
            console.print(f"audit log intact: {report.size} records, root {report.root_hex}")
        else:
            console.print(f"audit log BROKEN at index {report.first_bad_index}: {report.problem}")
        return report.ok

    if not asyncio.run(main()):
        raise typer.Exit(1)


@app.command("hash-secret")
def hash_secret() -> None:
    """Read a client secret from stdin (or prompt) and print the hash to put in the clients file."""
    secret = sys.stdin.readline().strip() if not sys.stdin.isatty() else getpass.getpass("client secret: ")
    typer.echo(hash_client_secret(secret))


if __name__ == "__main__":
    app()
