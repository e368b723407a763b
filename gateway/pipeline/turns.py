"""Turns: two fetched batches decided at once by one worker, their writes and hand-offs kept in fetch order.

A batch's transaction spends most of its time waiting: for the database's answers while it reads (the people,
the consents) and then for its writes and its commit. The inbound consumer therefore starts deciding the next
fetched batch while the one before is still in its transaction (:class:`~gateway.pipeline.consumer.InboundConsumer`,
``batches_in_flight``). Each batch gets a :class:`Turn`, chained to the turn of the batch before it:

- **Reads and decisions overlap.** A batch identifies its people, reads their consents and decides in its own
  transaction while the batch before is writing.
- **Writes follow fetch order.** Before its outgoing messages, counted events and audit records, a batch waits
  until the batch before has committed (:meth:`Turn.wait_for_earlier`). So the audit log, the outbox and the
  commits keep the order in which the records were fetched, and the two transactions never wait for each other's
  rows both ways: the later one may wait for the earlier one's rows, never the reverse, since the earlier one's
  writes (outbox, tokens, statistics, audit) touch no row the later one writes before its turn (statuses,
  people, identifier links).
- **Hand-offs follow fetch order.** A batch hands its committed outgoing messages to the delivery lane only after
  the batch before has handed over its own (:meth:`Turn.hand_off`), so one person's messages reach a partner in
  the order they were fetched.
- **A failure stops the batches after it.** If a batch ends without committing, the batches after it give up at
  their turn (:class:`EarlierBatchNotCommitted`, a retriable :class:`~gateway.errors.DependencyUnavailable`) and
  roll back; the consumer decides them again, one at a time, in order, and the replay guard makes sure nothing is
  decided twice. A turn that waits longer than ``wait_s`` gives up the same way, so that no wait the database
  cannot see ever holds a worker for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from gateway.errors import DependencyUnavailable
from gateway.store import OutboxRow

__all__ = ["EarlierBatchNotCommitted", "Turn"]

_WAIT_S = 30.0
"""How long a batch waits for the batch before it to commit before giving up (rolled back, decided again)."""


class EarlierBatchNotCommitted(DependencyUnavailable):
    """The batch fetched before this one ended without committing (or took too long): this one is rolled back and
    decided again after it."""


class Turn:
    """One batch's place among the batches a worker decides at once (module docstring)."""

    def __init__(self, before: Turn | None = None, *, wait_s: float = _WAIT_S) -> None:
        loop = asyncio.get_running_loop()
        self._before = before
        self._wait_s = wait_s
        self._committed: asyncio.Future[None] = loop.create_future()
        self._handed_off: asyncio.Future[None] = loop.create_future()

    async def wait_for_earlier(self) -> None:
        """Return once the batch before has committed; raise :class:`EarlierBatchNotCommitted` if it ended
        without committing or does not commit within ``wait_s``."""
        before = self._before
        if before is None:
            return
        try:
            async with asyncio.timeout(self._wait_s):
                await asyncio.shield(before._committed)
        except TimeoutError:
            raise EarlierBatchNotCommitted(
                f"the batch fetched before this one did not commit within {self._wait_s:g} s; deciding again"
            ) from None
        except EarlierBatchNotCommitted:
            raise EarlierBatchNotCommitted("the batch fetched before this one failed; deciding again") from None

    def committed(self) -> None:
        """This batch has committed: the batch after it may write."""
        if not self._committed.done():
            self._committed.set_result(None)

    def failed(self) -> None:
        """This batch ended without committing: the batch after it gives up at its turn."""
        if not self._committed.done():
            self._committed.set_exception(EarlierBatchNotCommitted("the batch fetched before this one failed"))
            self._committed.exception()  # retrieved here: no batch after it may ever ask

    async def hand_off(self, put: Callable[[Sequence[OutboxRow]], Awaitable[None]],
                       rows: Sequence[OutboxRow]) -> None:
        """Give ``rows`` (committed) to ``put`` once the batch before has handed over its own."""
        try:
            if self._before is not None:
                await asyncio.shield(self._before._handed_off)
            await put(rows)
        finally:
            self.finish()

    def finish(self) -> None:
        """This batch is done with: if it never committed, the batches after it give up; if it handed nothing
        over, they need not wait for it."""
        self.failed()
        if not self._handed_off.done():
            self._handed_off.set_result(None)
        self._before = None  # no chain of finished turns is kept alive
