"""Turns (gateway.pipeline.turns): a batch decided beside the one before writes after it, hands off after it, and
gives up when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.errors import DependencyUnavailable
from gateway.pipeline.turns import EarlierBatchNotCommitted, Turn


async def test_a_batch_writes_only_once_the_batch_before_has_committed() -> None:
    first = Turn()
    second = Turn(first)
    events: list[str] = []

    async def later() -> None:
        await second.wait_for_earlier()
        events.append("second writes")

    waiting = asyncio.create_task(later())
    await asyncio.sleep(0.01)
    assert events == []  # still waiting for the first batch's commit
    events.append("first commits")
    first.committed()
    await waiting
    assert events == ["first commits", "second writes"]


async def test_the_first_batch_and_a_finished_one_never_wait() -> None:
    first = Turn()
    await asyncio.wait_for(first.wait_for_earlier(), 0.1)
    first.committed()
    first.finish()
    second = Turn(first)
    await asyncio.wait_for(second.wait_for_earlier(), 0.1)


async def test_a_failed_batch_makes_the_batch_after_it_give_up_retriably() -> None:
    first = Turn()
    second = Turn(first)
    third = Turn(second)
    first.finish()  # ended without committing
    with pytest.raises(EarlierBatchNotCommitted) as raised:
        await second.wait_for_earlier()
    assert isinstance(raised.value, DependencyUnavailable)  # the consumer decides it again
    second.finish()
    with pytest.raises(EarlierBatchNotCommitted):
        await third.wait_for_earlier()


async def test_a_batch_committed_then_finished_does_not_fail_the_next() -> None:
    first = Turn()
    second = Turn(first)
    first.committed()
    first.finish()  # what the consumer does when the batch's task ends, however it ended
    await asyncio.wait_for(second.wait_for_earlier(), 0.1)


async def test_a_turn_gives_up_when_the_batch_before_takes_too_long() -> None:
    first = Turn()
    second = Turn(first, wait_s=0.05)
    with pytest.raises(EarlierBatchNotCommitted, match="did not commit within"):
        await second.wait_for_earlier()
    first.committed()  # the wait that gave up did not cancel what the batch before still holds
    await asyncio.wait_for(Turn(first).wait_for_earlier(), 0.1)


async def test_hand_offs_follow_fetch_order_even_when_the_later_batch_is_ready_first() -> None:
    first = Turn()
    second = Turn(first)
    handed: list[str] = []

    async def put(rows: Sequence[object]) -> None:
        handed.append(str(rows[0]))

    later = asyncio.create_task(second.hand_off(put, ["second"]))  # type: ignore[list-item]
    await asyncio.sleep(0.01)
    assert handed == []
    await first.hand_off(put, ["first"])  # type: ignore[list-item]
    await later
    assert handed == ["first", "second"]


async def test_a_batch_that_hands_off_nothing_does_not_hold_the_next_one_back() -> None:
    first = Turn()
    second = Turn(first)
    handed: list[str] = []

    async def put(rows: Sequence[object]) -> None:
        handed.append(str(rows[0]))

    later = asyncio.create_task(second.hand_off(put, ["second"]))  # type: ignore[list-item]
    first.committed()
    first.finish()  # committed, nothing to deliver (every message denied without a status, or all replays)
    await asyncio.wait_for(later, 0.1)
    assert handed == ["second"]
