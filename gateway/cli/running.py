"""Running the gateway: ``demo`` (embedded defaults and simulated partners), ``serve`` (the HTTP API, with the
relay and inbound consumer by default), ``worker`` (the relay and consumer alone) and ``migrate``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli.setup import built_gateway, configured_settings, on_store

if TYPE_CHECKING:
    import uvicorn

    from gateway.bootstrap import Gateway


def demo(
    once: Annotated[bool, typer.Option(help="Run one bounded exchange, print the summary and exit.")] = False,
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1 (a free one if taken).")] = 8080,
) -> None:
    """Run the gateway on embedded defaults with simulated partners exchanging referrals. Its store, bus log and
    keys live under GATEWAY_DATA_DIR/demo (wiped at each start); its logs go to demo.log there."""
    import asyncio

    from gateway.demo import run_demo

    settings = configured_settings()
    settings = settings.model_copy(update={"data_dir": settings.data_dir / "demo", "bus": "embedded",
                                           "database_url": None})
    try:
        summary = asyncio.run(run_demo(settings, once=once, port=port, log_file=settings.data_dir / "demo.log"))
    except KeyboardInterrupt:
        return
    if summary.audit is None or not summary.audit.ok or summary.forwarded == 0:
        raise typer.Exit(1)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default GATEWAY_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default GATEWAY_HTTP_PORT).")] = None,
    workers: Annotated[bool, typer.Option(help="Also run the relay and the in.<partner> consumer.")] = True,
) -> None:
    """Run the HTTP API (and, by default, the relay and inbound consumer) with the configured settings.

    The API listens at once: while the gateway waits for its database and bus, /health answers 200 and
    /health/ready 503 (gateway-starting). Exits 1 if they never answer within GATEWAY_STARTUP_WAIT_SECONDS
    or a worker task keeps failing."""
    import asyncio

    import uvicorn

    from gateway.api import create_app
    from gateway.api.serving import server_config

    settings, gateway = built_gateway(None)

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
    import asyncio

    from gateway.bootstrap import DependencyTimeout, GatewayStopError

    try:
        return asyncio.run(main())
    except DependencyTimeout as exc:
        typer.echo(f"not started: {exc}", err=True)
        return 1
    except GatewayStopError as exc:
        typer.echo(f"stopped with failures: {', '.join(type(e).__name__ for e in exc.exceptions)}", err=True)
        return 1


def worker() -> None:
    """Run only the relay and the inbound consumer (scale out by starting more). Exits non-zero when a task
    keeps failing (after restarts with back-off), so that the process supervisor restarts it whole."""
    import asyncio
    import signal

    from gateway.logging import get_logger

    settings, gateway = built_gateway(None)

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


def migrate() -> None:
    """Bring the store's schema to the newest migration."""
    async def nothing_more(_: Gateway) -> None:
        return None

    on_store(nothing_more, log_level=None)
