"""The delivery lane: committed batches delivered in the background, in commit order, while the next is decided.

Without it the inbound consumer takes turns: decide a batch and commit it, then deliver it (lock its outbox rows,
publish them, wait for the broker's acknowledgements, mark them published, commit again), and only then fetch
and decide the next. The two halves wait on different things (the database's commit, the broker's
acknowledgements), so the consumer hands each committed batch to a :class:`DeliveryLane` and goes on deciding
the next one while the lane delivers.

- **Order.** One batch is delivered at a time, in the order the consumer committed them, so a person's messages
  reach a partner in the order they were decided (the record key keeps them on one partition).
- **Bounded.** At most ``depth`` committed batches wait for the lane; :meth:`DeliveryLane.put` waits beyond that,
  so a slow broker slows the consumer down instead of piling rows up in memory.
- **Nothing is lost.** A batch is durable in the outbox before it reaches the lane. A delivery that fails (store
  or bus away) or never happens (the process stops or crashes first) leaves its rows queued, and the relay's sweep
  delivers them (:mod:`gateway.pipeline.relay`); the consumer's offset commit never waits for delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from gateway.logging import get_logger
from gateway.store import OutboxRow

__all__ = ["DeliveryLane"]

log = get_logger(__name__)

_CLOSE: list[OutboxRow] = []
"""Put after the last batch: the lane ends once everything before it is delivered."""


class DeliveryLane:
    """Delivers committed batches one at a time, in order, beside the consumer (module docstring)."""

    def __init__(self, deliver: Callable[[Sequence[OutboxRow]], Awaitable[None]], depth: int = 1) -> None:
        self._deliver = deliver
        """Delivers one batch; expected to leave the rows to the relay itself when it cannot deliver them
        (:meth:`gateway.pipeline.intake.Intake.deliver_committed`)."""
        self._queue: asyncio.Queue[Sequence[OutboxRow]] = asyncio.Queue(maxsize=depth)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start delivering in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="delivery-lane")

    async def put(self, rows: Sequence[OutboxRow]) -> None:
        """Queue a committed batch's rows; waits while ``depth`` batches already wait."""
        if not rows:
            return
        if self._task is None or self._task.done():  # not running: deliver in the caller's turn, as before
            await self._deliver(rows)
            return
        await self._queue.put(rows)

    async def close(self) -> None:
        """Deliver what is queued, then end. Cancelled meanwhile, it stops at once: rows not delivered stay
        queued for the relay's sweep."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await self._queue.put(_CLOSE)
            await task
        except BaseException:
            task.cancel()
            raise

    async def _run(self) -> None:
        while True:
            rows = await self._queue.get()
            if rows is _CLOSE:
                return
            try:
                await self._deliver(rows)
            except Exception:  # a fault of the gateway's own: the rows stay queued, the relay sweeps them up
                log.error("delivery-failed-left-to-relay", count=len(rows), exc_info=True)
