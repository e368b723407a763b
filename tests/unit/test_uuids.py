"""The gateway's own ids (gateway.uuids): UUID version 7 with the RFC 4122 variant, written as the standard
library writes a UUID, holding the time they were minted, increasing in one process, and never repeated across
threads or a fork."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from gateway.uuids import uuid7_text


def test_ids_are_version_7_uuids_written_as_the_standard_library_writes_them_and_hold_their_time() -> None:
    before = time.time_ns() // 1_000_000
    minted = [uuid7_text() for _ in range(5_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(minted)) == len(minted)
    for text in minted[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == text
    stamps = [uuid.UUID(text).int >> 80 for text in minted]  # the first 48 bits: Unix time in milliseconds
    assert before <= stamps[0] <= stamps[-1] <= after


def test_ids_one_process_mints_increase_so_that_an_index_on_them_grows_at_its_end() -> None:
    minted = [uuid7_text() for _ in range(20_000)]
    assert minted == sorted(minted)
    assert len(set(minted)) == len(minted)


def test_the_random_part_varies() -> None:
    # 74 bits after the time and the version: the ones below the monotonic counter vary from id to id
    tails = {uuid.UUID(uuid7_text()).int & ((1 << 32) - 1) for _ in range(1_000)}
    assert len(tails) == 1_000


def test_threads_never_get_the_same_id() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(lambda _: [uuid7_text() for _ in range(2_000)], range(8)))
    minted = [text for batch in batches for text in batch]
    assert len(set(minted)) == len(minted) == 16_000


def test_a_forked_child_does_not_mint_the_ids_its_parent_mints_next() -> None:
    uuid7_text()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, ",".join(uuid7_text() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        from_child = set(pipe.read().split(","))
    os.waitpid(child, 0)
    from_parent = {uuid7_text() for _ in range(5)}
    assert len(from_child) == 5 and not from_child & from_parent
