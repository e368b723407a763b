"""The event loop the gateway's long-running commands (``serve``, ``worker``) run on.

By default uvloop, the libuv-based drop-in for asyncio's loop: the hot path is I/O bound per batch (PostgreSQL
and Kafka round trips, TLS to the brokers), and a tenth of a worker's CPU went to the standard loop's selector
and socket transports. ``GATEWAY_EVENT_LOOP=asyncio`` selects the standard loop (e.g. to rule the loop out while
chasing a fault); so does a platform uvloop does not support. The code is the same on both: only standard
asyncio APIs are used, and the test suite runs on the standard loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["EventLoopName", "loop_factory", "run"]

T = TypeVar("T")
EventLoopName = Literal["uvloop", "asyncio"]


def loop_factory(name: EventLoopName = "uvloop") -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of new event loops of the kind named; the standard loop when uvloop cannot be imported."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:  # not built for this platform: the standard loop does the same work, slower
            return asyncio.new_event_loop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], name: EventLoopName = "uvloop") -> T:
    """Run ``main`` to completion on a new loop of the kind named, as :func:`asyncio.run` does."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)
