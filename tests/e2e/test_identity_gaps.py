"""Identity gaps end to end through the bus, on both backend pairs: an emergency about a person with no
identifier at all still crosses (F10, the flow's case over real backends) and later messages about the same
incident reach the same pseudonym; a message quoting a crosswalk token gives the Comune its own case id back,
and a token that is forged, or quoted about another person, is dead-lettered with its reason and never echoed.
Which recipient a token resolves for is decided by the same intake over the in-memory store in
``tests/unit/pipeline/test_identity_gaps_on_memory_store.py``."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.bootstrap import Gateway
from gateway.simulators import comune_case_event
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until
from tests.e2e.test_flows import CF, aler_header, submit

OTHER_CF = "PGDCSN55T58F205S"


def unidentified_emergency(message_id: str, kind: str) -> dict[str, Any]:
    """An unaccompanied minor found in an ALER building: no codice fiscale, no contract, ALER's incident id."""
    return {**aler_header("evento-emergenza", message_id, "emergency-social", ["pis"]),
            "evento": {"tipo": kind, "riferimento": "EV-2026-0042"},
            "luogo": {"id_edificio": "ALER-B-0042", "quartiere": "San Siro", "municipio": 7},
            "nucleo": {"persone": 1, "minori": 1, "over_65": 0, "con_disabilita": 0}}


async def test_F10_crosses_for_a_person_with_no_identifier_and_follow_ups_reach_the_same_person(
    gateway: Gateway,
) -> None:
    await submit(gateway, "aler", unidentified_emergency("f10-u1", "unaccompanied-minor"))
    await submit(gateway, "aler", unidentified_emergency("f10-u2", "unaccompanied-minor"))

    records = await read_until(gateway, "out", "pis", 2, settle_s=0.5)

    referrals = [orjson.loads(r.value) for r in records]
    assert [r["persona"] for r in referrals] == [
        {"codice_fiscale": None, "id_caso": None, "riferimento_evento": "aler:EV-2026-0042"}] * 2
    assert {r["evento"]["tipo"] for r in referrals} == {"unaccompanied-minor"}
    decisions = [r for r in await audit_records(gateway) if r["event_type"] == "decision"]
    assert [(r["flow_id"], r["outcome"]) for r in decisions] == [("F10", "permit")] * 2
    assert len({r["subject_ref"] for r in decisions}) == 1 and decisions[0]["subject_ref"]


async def test_aler_quoting_its_case_token_gives_the_comune_its_own_case_id_and_a_forged_token_is_refused(
    gateway: Gateway,
) -> None:
    await submit(gateway, "comune", comune_case_event(CF, "MI-SST-2026-000777", "f3-t2", "corr-f2-t2"))
    [record] = await read_until(gateway, "out", "aler", 1, settle_s=0.5)
    case_token = orjson.loads(record.value)["payload"]["case_id"]
    milestone = {"id_messaggio": "f9-t1", "id_correlazione": "corr-f9-t1", "tipo_messaggio": "evento-sfratto",
                 "versione": "1.0", "data_evento": "2026-11-20T09:30:00+01:00", "finalita": "housing-support",
                 "destinatari": ["comune"], "riferimento_gateway": case_token,
                 "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
                 "intestatario": {"codice_fiscale": CF},
                 "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"}}
    await submit(gateway, "aler", milestone)
    [to_comune] = await read_until(gateway, "out", "comune", 1, settle_s=0.5)
    assert orjson.loads(to_comune.value)["id_caso"] == "MI-SST-2026-000777"

    forged = "gwt_" + "a" * 24
    await submit(gateway, "aler", {**milestone, "id_messaggio": "f9-t2", "riferimento_gateway": forged})
    someone_else = {**milestone, "id_messaggio": "f9-t3", "intestatario": {"codice_fiscale": OTHER_CF}}
    await submit(gateway, "aler", someone_else)  # a real token, quoted about another person
    dead = await read_until(gateway, "dlq", "aler", 2)
    for entry in dead:
        assert "unknown-token" in entry.value.decode() and forged not in entry.value.decode()
    assert len(await read_until(gateway, "out", "comune", 1, settle_s=0.5)) == 1
