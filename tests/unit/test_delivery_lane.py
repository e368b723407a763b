"""The delivery lane delivers committed batches in commit order, one at a time, bounded, beside the consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.pipeline.delivery import DeliveryLane
from gateway.store import OutboxRow


def _rows(batch: int, count: int = 2) -> list[OutboxRow]:
    return [OutboxRow(topic="out.fwa", recipient="fwa", message_id=f"gw-{batch}-{n}", value=b"{}", key=b"k",
                      headers=(), created_at=datetime(2026, 12, 6, tzinfo=UTC)) for n in range(count)]


class Recorder:
    """A delivery that records what it was given, optionally held until released, optionally failing once."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next = False
        self.running = 0
        self.most_at_once = 0

    async def __call__(self, rows: Sequence[OutboxRow]) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.started.set()
            await self.release.wait()
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("a fault of the delivery")
            self.delivered += [r.message_id for r in rows]
        finally:
            self.running -= 1


async def test_batches_are_delivered_one_at_a_time_in_the_order_they_were_put() -> None:
    recorder = Recorder()
    lane = DeliveryLane(recorder, depth=3)
    lane.start()
    for batch in range(5):
        await lane.put(_rows(batch))
    await lane.close()
    assert recorder.delivered == [f"gw-{b}-{n}" for b in range(5) for n in range(2)]
    assert recorder.most_at_once == 1


async def test_put_returns_while_the_previous_batch_is_still_being_delivered() -> None:
    """What the consumer gains: the next batch is decided while the lane waits on the broker."""
    recorder = Recorder()
    recorder.release.clear()
    lane = DeliveryLane(recorder, depth=1)
    lane.start()
    await lane.put(_rows(0))
    await asyncio.wait_for(recorder.started.wait(), 1)
    await asyncio.wait_for(lane.put(_rows(1)), 1)  # queued beside the one in delivery, not delivered
    assert recorder.delivered == []
    recorder.release.set()
    await lane.close()
    assert recorder.delivered == ["gw-0-0", "gw-0-1", "gw-1-0", "gw-1-1"]


async def test_put_waits_once_depth_batches_wait_behind_the_one_in_delivery() -> None:
    recorder = Recorder()
    recorder.release.clear()
    lane = DeliveryLane(recorder, depth=1)
    lane.start()
    await lane.put(_rows(0))
    await asyncio.wait_for(recorder.started.wait(), 1)
    await lane.put(_rows(1))
    third = asyncio.create_task(lane.put(_rows(2)))
    await asyncio.sleep(0.05)
    assert not third.done(), "the lane took a third batch while one was delivered and one waited"
    recorder.release.set()
    await asyncio.wait_for(third, 1)
    await lane.close()
    assert [m for m in recorder.delivered if m.endswith("-0")] == ["gw-0-0", "gw-1-0", "gw-2-0"]


async def test_a_failed_delivery_does_not_stop_the_lane() -> None:
    """Its rows stay queued in the outbox for the relay's sweep; the next batches are still delivered."""
    recorder = Recorder()
    recorder.fail_next = True
    lane = DeliveryLane(recorder)
    lane.start()
    await lane.put(_rows(0))
    await lane.put(_rows(1))
    await lane.close()
    assert recorder.delivered == ["gw-1-0", "gw-1-1"]


async def test_a_lane_not_started_delivers_in_the_callers_turn() -> None:
    recorder = Recorder()
    lane = DeliveryLane(recorder)
    await lane.put(_rows(0))
    assert recorder.delivered == ["gw-0-0", "gw-0-1"]
    await lane.put([])
    assert recorder.delivered == ["gw-0-0", "gw-0-1"]


async def test_closing_a_cancelled_lane_delivers_nothing_more() -> None:
    """Stopping hard: what was queued but not delivered stays in the outbox (the relay's sweep delivers it)."""
    recorder = Recorder()
    recorder.release.clear()
    lane = DeliveryLane(recorder)
    lane.start()
    await lane.put(_rows(0))
    await asyncio.wait_for(recorder.started.wait(), 1)
    closing = asyncio.create_task(lane.close())
    await asyncio.sleep(0.05)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    recorder.release.set()
    await asyncio.sleep(0.05)
    assert recorder.delivered == []
