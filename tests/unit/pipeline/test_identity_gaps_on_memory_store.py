"""Identity gaps over the in-memory store: the crosswalk tokens a recipient receives are recorded so that only
that recipient can quote them back, and quoting one gives its owner's identifier to that owner alone. People
with no identifier (F10), quoting a token back, and a quoted token a partner may not use (dead-lettered by the
consumer) run over both real backends in ``tests/e2e/test_identity_gaps.py``."""

from __future__ import annotations

import orjson

from gateway.simulators import comune_case_event
from tests.e2e.test_flows import CF
from tests.pipeline_harness import Pipeline


async def test_a_case_token_sent_to_aler_resolves_for_aler_only(pipeline: Pipeline) -> None:
    await pipeline.submit("comune", comune_case_event(CF, "MI-SST-2026-000123", "f3-t1", "corr-f2-t1"))
    [record] = await pipeline.read("out", "aler")
    body = orjson.loads(record.value)
    case_token = body["payload"]["case_id"]
    [subject_token] = [i["value"] for i in body["subject"]["identifiers"] if i["system"] == "gateway-token"]

    async with pipeline.store.transaction() as tx:
        person = await tx.subject("cf", CF, create=False)
        by_aler = [await tx.subject_of_token(t, "aler") for t in (case_token, subject_token)]
        by_fwa = [await tx.subject_of_token(t, "fwa") for t in (case_token, subject_token)]
        case_id = await tx.token_identifier(case_token, "aler")

    assert person is not None and by_aler == [person, person]
    assert by_fwa == [None, None]
    assert case_id == ("comune-case", "MI-SST-2026-000123")
