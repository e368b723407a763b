"""The integrity status shared by privacy-officer answers: one verification per ``max_age_seconds``, shared by
answers asked meanwhile, and a fresh one once it is older (the status says when it was made)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.privacy_office import IntegrityCache, IntegrityStatus


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_verifier() -> tuple[list[int], Callable[[], Awaitable[IntegrityStatus]]]:
    calls: list[int] = []

    async def verify() -> IntegrityStatus:
        calls.append(1)
        await asyncio.sleep(0.01)
        return IntegrityStatus(verified=True, tree_size=len(calls), root_hex="00", checked_at=f"call-{len(calls)}")

    return calls, verify


async def test_answers_within_the_age_share_one_verification_then_a_new_one_is_made() -> None:
    clock = Clock()
    cache = IntegrityCache(300, clock)
    calls, verify = counting_verifier()
    first = await cache.get(verify)
    clock.now += 299
    assert await cache.get(verify) is first
    clock.now += 2
    second = await cache.get(verify)
    assert (len(calls), first.checked_at, second.checked_at) == (2, "call-1", "call-2")


async def test_concurrent_answers_wait_for_the_one_verification_running() -> None:
    calls, verify = counting_verifier()
    cache = IntegrityCache(300, Clock())
    statuses = await asyncio.gather(*(cache.get(verify) for _ in range(5)))
    assert len(calls) == 1 and len({id(s) for s in statuses}) == 1


async def test_age_zero_verifies_for_every_answer() -> None:
    calls, verify = counting_verifier()
    cache = IntegrityCache(0, Clock())
    for _ in range(3):
        await cache.get(verify)
    assert len(calls) == 3
