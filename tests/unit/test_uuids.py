"""The gateway's own UUIDs (gateway.uuids): version 4, RFC 4122 variant, written as uuid.uuid4() writes them,
never repeated across buffer refills, threads or a fork."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

from gateway.uuids import uuid4_text


def test_ids_are_random_version_4_uuids_written_as_the_standard_library_writes_them() -> None:
    minted = [uuid4_text() for _ in range(5_000)]  # about twenty refills of the buffer
    assert len(set(minted)) == len(minted)
    for text in minted[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
    # every bit outside version and variant varies (122 random bits, as uuid4 has)
    ored = anded = uuid.UUID(minted[0]).int
    for text in minted[1:]:
        value = uuid.UUID(text).int
        ored, anded = ored | value, anded & value
    assert ored == (1 << 128) - 1 - (0xB000 << 64) - (0x4000 << 48)
    assert anded == (4 << 76) | (0x8000 << 48)


def test_threads_never_get_the_same_id() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(lambda _: [uuid4_text() for _ in range(2_000)], range(8)))
    minted = [text for batch in batches for text in batch]
    assert len(set(minted)) == len(minted) == 16_000


def test_a_forked_child_does_not_mint_the_ids_its_parent_mints_next() -> None:
    uuid4_text()  # the buffer holds unused ids when the process forks
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, ",".join(uuid4_text() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        from_child = set(pipe.read().split(","))
    os.waitpid(child, 0)
    from_parent = {uuid4_text() for _ in range(5)}
    assert len(from_child) == 5 and not from_child & from_parent
