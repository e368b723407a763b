"""The one setup every ``gateway`` command shares: the configured settings, a gateway built from them, its store
migrated for a command that changes it (:func:`on_store`) or opened read-only for one that must not create it
(:func:`existing_store`), and a progress bar that stays off piped output.

Only typer and the standard library load with this module; the gateway itself is imported when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.settings import GatewaySettings
    from gateway.store import Store

T = TypeVar("T")


def configured_settings() -> GatewaySettings:
    """The settings from the environment (``GATEWAY_*``) and the files they name."""
    from gateway.settings import GatewaySettings

    return GatewaySettings()


def built_gateway(log_level: str | None) -> tuple[GatewaySettings, Gateway]:
    """The configured settings and a gateway built from them, logging at ``log_level`` (the configured level
    if None)."""
    from gateway.bootstrap import build
    from gateway.logging import configure_logging

    settings = configured_settings()
    configure_logging(log_level or settings.log_level)
    return settings, build(settings)


def on_store(work: Callable[[Gateway], Coroutine[Any, Any, T]], log_level: str | None = "WARNING") -> T:
    """Run ``work`` on a gateway built from the configured settings, its store migrated first and closed
    afterwards whatever happens: the one setup of every command that changes the store."""
    import asyncio

    _, gateway = built_gateway(log_level)

    async def main() -> T:
        await gateway.store.migrate()
        try:
            return await work(gateway)
        finally:
            await gateway.store.close()

    return asyncio.run(main())


def on_seeded_store(work: Callable[[Gateway], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` through :func:`on_store`, the store first seeded with the configured clients file's clients
    it does not hold yet (the commands that manage clients and officer accounts)."""
    async def seeded(gateway: Gateway) -> T:
        await gateway.directory.refresh(force=True)
        return await work(gateway)

    return on_store(seeded)


def existing_store(settings: GatewaySettings, command: str) -> Store:
    """The store the settings name, for a read-only command; exit 2 naming it when there is none."""
    import asyncio

    from gateway.readonly import StoreNotFound, open_existing_store

    try:
        return asyncio.run(open_existing_store(settings))
    except StoreNotFound as exc:
        demo = (settings.data_dir / "demo" / "gateway.sqlite3")
        hint = (f"\nthe demo's store is under {demo.parent}: GATEWAY_DATA_DIR={demo.parent.resolve()} "
                f"gateway {command}") if demo.is_file() else ""
        typer.echo(f"{exc}{hint}", err=True)
        raise typer.Exit(2) from None


def requester(by: str | None) -> str:
    """Who asks, for an audit record: ``by``, else ``cli:<login name>``."""
    import getpass

    return by or f"cli:{getpass.getuser()}"


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Callable[[int, int | None], None]]:
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
