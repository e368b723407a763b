"""Identity gaps over the in-memory store: an emergency about a person with no identifier at all still crosses
(F10) and later messages about the same incident reach the same pseudonym; the crosswalk tokens a recipient
receives are recorded so that only that recipient can quote them back, and quoting one gives its owner's
identifier to that owner alone. A quoted token a partner may not use is dead-lettered by the consumer: that case
runs over both real backends in ``tests/e2e/test_identity_gaps.py``."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.simulators import comune_case_event
from tests.e2e.test_flows import CF, aler_header
from tests.pipeline_harness import Pipeline


def unidentified_emergency(message_id: str, kind: str) -> dict[str, Any]:
    """An unaccompanied minor found in an ALER building: no codice fiscale, no contract, ALER's incident id."""
    return {**aler_header("evento-emergenza", message_id, "emergency-social", ["pis"]),
            "evento": {"tipo": kind, "riferimento": "EV-2026-0042"},
            "luogo": {"id_edificio": "ALER-B-0042", "quartiere": "San Siro", "municipio": 7},
            "nucleo": {"persone": 1, "minori": 1, "over_65": 0, "con_disabilita": 0}}


async def test_F10_crosses_for_a_person_with_no_identifier_and_follow_ups_reach_the_same_person(
    pipeline: Pipeline,
) -> None:
    await pipeline.submit("aler", unidentified_emergency("f10-u1", "unaccompanied-minor"))
    await pipeline.submit("aler", unidentified_emergency("f10-u2", "unaccompanied-minor"))

    records = await pipeline.read("out", "pis")
    assert len(records) == 2

    referrals = [orjson.loads(r.value) for r in records]
    assert [r["persona"] for r in referrals] == [
        {"codice_fiscale": None, "id_caso": None, "riferimento_evento": "aler:EV-2026-0042"}] * 2
    assert {r["evento"]["tipo"] for r in referrals} == {"unaccompanied-minor"}
    decisions = [r for r in await pipeline.audit() if r["event_type"] == "decision"]
    assert [(r["flow_id"], r["outcome"]) for r in decisions] == [("F10", "permit")] * 2
    assert len({r["subject_ref"] for r in decisions}) == 1 and decisions[0]["subject_ref"]


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
