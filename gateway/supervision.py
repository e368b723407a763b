"""Supervision of the gateway's long-running tasks: none of them may end silently and leave the process
half-alive.

The relay, the inbound consumer, the audit checkpointer and the retention job each run as one asyncio task
until the gateway's stop event is set. A task that ends before that (an exception, or a plain return) is logged
by type and restarted after a back-off that doubles from ``backoff_initial`` up to ``backoff_max``. After
``restart_limit`` failures in a row (a task that has run ``healthy_after`` seconds since its last restart counts
from zero again) the supervisor stops restarting it and sets :attr:`Supervisor.fatal`: the command running the
gateway then stops everything and exits non-zero (crash-only), so that an outside supervisor (systemd,
Kubernetes) restarts the whole process instead of it lingering with, say, a relay but no consumer.

Readiness reads :meth:`Supervisor.health`: each task's state, restarts and the type of its last error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from gateway.logging import get_logger

__all__ = ["Supervisor", "TaskHealth"]

log = get_logger(__name__)

TaskState = Literal["running", "restarting", "failed", "stopped"]


@dataclass
class TaskHealth:
    """What readiness reports about one supervised task."""

    name: str
    """The task's name, e.g. ``inbound-consumer``."""
    state: TaskState = "running"
    """``running``; ``restarting`` (waiting out the back-off after it ended); ``failed`` (given up: the process
    is on its way out); ``stopped`` (ended because the gateway is stopping)."""
    restarts: int = 0
    """Restarts since the gateway started."""
    failures_in_a_row: int = 0
    """Failures since the task last ran ``healthy_after`` seconds."""
    last_error: str | None = None
    """Type of the last error that ended it (never its message, which may echo input), or ``returned``."""

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


class Supervisor:
    """Runs named long-running coroutines, restarting them with back-off (see the module docstring)."""

    def __init__(self, stop: asyncio.Event, *, restart_limit: int = 5, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0, healthy_after: float = 60.0) -> None:
        if restart_limit < 0:
            raise ValueError("restart_limit must not be negative")
        self._stop = stop
        self.restart_limit = restart_limit
        self.backoff_initial = min(backoff_initial, backoff_max)
        self.backoff_max = backoff_max
        self.healthy_after = healthy_after
        self.fatal = asyncio.Event()
        """Set once a task has failed ``restart_limit + 1`` times in a row: the process must stop and exit
        non-zero."""
        self._health: dict[str, TaskHealth] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``run()`` as the task ``name`` under supervision; ``run`` is called again for each restart."""
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"a task called {name} is already supervised")
        self._health[name] = TaskHealth(name)
        self._tasks[name] = asyncio.create_task(self._supervise(name, run), name=name)

    def health(self) -> dict[str, TaskHealth]:
        """Every supervised task's state, by name."""
        return dict(self._health)

    def healthy(self) -> bool:
        """True while every task runs (none restarting or given up)."""
        return bool(self._health) and all(h.state == "running" for h in self._health.values())

    async def stop(self, timeout_s: float = 30.0) -> list[BaseException]:
        """Wait for every task to end (the caller has set the stop event), cancelling one that takes longer
        than ``timeout_s``; returns the errors they ended with while stopping, without raising them."""
        errors: list[BaseException] = []
        tasks, self._tasks = self._tasks, {}
        for name, task in tasks.items():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=timeout_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                log.error(f"{name}-did-not-stop", retry_in_s=timeout_s)
                errors.append(TimeoutError(f"task {name} did not stop within {timeout_s} s"))
            except asyncio.CancelledError:
                if task.cancelled():  # the task itself was cancelled: nothing to report
                    continue
                raise
            except Exception as exc:  # reported by the caller after closing the rest
                errors.append(exc)
        return errors

    async def _supervise(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        health = self._health[name]
        loop = asyncio.get_running_loop()
        backoff = self.backoff_initial
        while True:
            health.state = "running"
            started = loop.time()
            try:
                await run()
            except asyncio.CancelledError:
                health.state = "stopped"
                raise
            except Exception as exc:
                if self._stop.is_set():
                    health.state = "stopped"
                    health.last_error = type(exc).__name__
                    log.error(f"{name}-failed-while-stopping", error_type=type(exc).__name__, exc_info=True)
                    raise
                health.last_error = type(exc).__name__
                log.error(f"{name}-failed", error_type=type(exc).__name__, exc_info=True)
            else:
                if self._stop.is_set():
                    health.state = "stopped"
                    return
                health.last_error = "returned"
                log.error(f"{name}-ended-unexpectedly")
            if loop.time() - started >= self.healthy_after:
                health.failures_in_a_row = 0
                backoff = self.backoff_initial
            health.failures_in_a_row += 1
            if health.failures_in_a_row > self.restart_limit:
                health.state = "failed"
                log.critical(f"{name}-gave-up", attempt=health.failures_in_a_row, error_type=health.last_error)
                self.fatal.set()
                return
            health.state = "restarting"
            log.warning(f"{name}-restarting", attempt=health.failures_in_a_row, retry_in_s=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=backoff)
            if self._stop.is_set():
                health.state = "stopped"
                return
            health.restarts += 1
            backoff = min(backoff * 2, self.backoff_max)
