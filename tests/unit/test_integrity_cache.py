"""The integrity status shared by privacy-officer answers: one verification per ``max_age_seconds``, shared by
answers asked meanwhile, and a fresh one once it is older (the status says when it was made)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.privacy.integrity import IntegrityCache, IntegrityStatus


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


def stored_at_age(age: float, calls: list[int]) -> Callable[[], Awaitable[tuple[IntegrityStatus, float] | None]]:
    async def stored() -> tuple[IntegrityStatus, float] | None:
        calls.append(1)
        return IntegrityStatus(verified=True, tree_size=7, root_hex="00", checked_at="stored"), age

    return stored


async def test_a_stored_status_younger_than_the_age_is_answered_without_verifying() -> None:
    calls, verify = counting_verifier()
    reads: list[int] = []
    cache = IntegrityCache(300, Clock())
    status = await cache.get(verify, stored_at_age(10, reads))
    assert (status.checked_at, calls) == ("stored", [])
    assert (await cache.get(verify, stored_at_age(10, reads))).checked_at == "stored"
    assert reads == [1]  # the second answer came from memory


async def test_an_older_stored_status_is_answered_at_once_while_one_verification_runs_behind_it() -> None:
    calls, verify = counting_verifier()
    clock = Clock()
    cache = IntegrityCache(300, clock)
    answers = await asyncio.gather(*(cache.get(verify, stored_at_age(400, [])) for _ in range(3)))
    assert {a.checked_at for a in answers} == {"stored"}  # none waited for the verification
    await asyncio.sleep(0.05)  # the background verification finishes
    assert calls == [1]  # one, however many answers found the stored status too old
    assert (await cache.get(verify, stored_at_age(400, []))).checked_at == "call-1"


async def test_with_nothing_stored_the_answer_waits_for_a_verification() -> None:
    calls, verify = counting_verifier()

    async def nothing() -> None:
        return None

    cache = IntegrityCache(300, Clock())
    assert (await cache.get(verify, nothing)).checked_at == "call-1" and calls == [1]
