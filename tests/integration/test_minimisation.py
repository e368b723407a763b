"""Minimisation (plan M-01): each flow's projection of a full message is pinned field by field, no flow lets a
never-crossing field through, and two recipients of one person share no identifier of theirs on the bus (that
last case end to end over both backend pairs: it reads the records' Kafka keys).

M-02 (labels on the wire), M-03 (no personal data in the audit after a run of every flow), T-10/T-11 (one audit
record per decision and per disclosure) and rule 16 run through the intake over the in-memory store, in
``tests/unit/pipeline/test_minimisation_on_memory_store.py``.
"""

from __future__ import annotations

import orjson
import pytest

from gateway.bootstrap import Gateway
from gateway.identity.crosswalk import Crosswalk
from gateway.policy import load_registry, minimise
from gateway.simulators import aler_arrears_message, asst_discharge, comune_case_event
from schemas.envelope import Envelope
from tests.e2e.test_f1_microcredit_referral import tenant

REGISTRY = load_registry()


def flow(flow_id: str):  # type: ignore[no-untyped-def]
    return next(f for f in REGISTRY.flows if f.id == flow_id)


def decoded(partner: str, message: dict[str, object], content_type: str = "application/json") -> Envelope:
    from gateway.routing import DECODERS

    [envelope] = DECODERS[partner](orjson.dumps(message), content_type)
    return envelope.model_copy(update={"subject": envelope.subject.model_copy(update={"pseudonym": "sbj_fixture"})})


def test_M01_f1_projection_is_exactly_the_declared_fields() -> None:
    person = tenant(51)
    out = minimise(decoded("aler", aler_arrears_message(person, "m01")), flow("F1"), "gw-1")
    assert [(i.system, i.value) for i in out.subject.identifiers] == [("cf", person.cf)]
    assert sorted(out.payload) == ["arrears", "eligibility", "household", "isee_band", "request"]
    assert sorted(out.payload["arrears"]) == ["amount_cents", "months"]
    assert sorted(out.payload["household"]) == ["type"]
    assert "isee_value_cents" not in out.payload and "tenancy" not in out.payload


def test_M01_f3_projection_replaces_the_case_id_and_drops_the_court_mandate() -> None:
    envelope = decoded("comune", comune_case_event("RSSMRA85T10A562S", "MI-SST-1", "m", "c"))
    out = minimise(envelope, flow("F3"), "gw-2", Crosswalk(b"k" * 32).token)
    assert sorted(out.payload) == ["case_id", "event", "status"]
    assert out.payload["case_id"].startswith("gwt_")
    assert [i.system for i in out.subject.identifiers] == ["gateway-token"]


def test_M01_f11_projection_splits_needs_and_logistics() -> None:
    envelope = decoded("asst", asst_discharge("RSSMRA85T10A562S", "stay-1", "c"), "application/fhir+json")
    tokens = Crosswalk(b"k" * 32).token
    to_comune = minimise(envelope, flow("F11"), "gw-3", tokens).payload
    to_aler = minimise(envelope, flow("F11-aler"), "gw-4", tokens).payload
    assert to_comune.get("care_needs") and not to_comune.get("logistics")
    assert to_aler.get("logistics") and not to_aler.get("care_needs")


def test_M02_every_flow_declares_refrains_and_f1_carries_them_on_the_wire() -> None:
    assert all(f.refrains or f.emergency_override for f in REGISTRY.flows)
    f1 = flow("F1")
    assert f1.refrains == ("NORDSCLCD", "NOREUSE") and f1.obligations == ("PSEUD",)


@pytest.mark.parametrize("flow_id", [f.id for f in REGISTRY.flows])
def test_M01_no_flow_lets_a_never_crossing_field_through(flow_id: str) -> None:
    from schemas.social import NEVER_CROSSES as SOCIAL_NEVER
    from schemas.tenancy import NEVER_CROSSES as TENANCY_NEVER

    declared = flow(flow_id)
    never = {**SOCIAL_NEVER, **TENANCY_NEVER}.get(declared.message_type, ())
    allowed = {p.removesuffix(" as token") for p in declared.allowed_fields}
    assert not allowed & set(never)
    assert all(not any(a == n or a.startswith(n + ".") for n in never) for a in allowed)


def test_M01_the_never_crossing_lists_name_real_fields() -> None:
    from schemas.messages import MESSAGE_TYPES
    from schemas.social import NEVER_CROSSES as SOCIAL_NEVER

    [(message_type, fields)] = SOCIAL_NEVER.items()
    assert set(fields) <= set(MESSAGE_TYPES[message_type].model_fields)


async def test_M01_two_recipients_of_one_person_share_no_identifier_of_theirs(gateway: Gateway) -> None:
    """A protected discharge reaches the Comune and ALER (F11): neither the Kafka key nor the body of either
    carries the gateway's internal pseudonym, and the two keys differ, so the partners cannot match their
    records on anything the gateway gave them."""
    from gateway.bus import OutgoingRecord
    from tests.e2e.test_f1_microcredit_referral import read_until

    cf = "RSSMRA85T10A562S"
    await gateway.bus.publish([OutgoingRecord(topic=gateway.settings.topics.name("in", "asst"),
                                              value=orjson.dumps(asst_discharge(cf, "stay-m01", "corr-m01")),
                                              headers=(("content-type", b"application/fhir+json"),))])
    [to_comune] = await read_until(gateway, "out", "comune", 1)
    [to_aler] = await read_until(gateway, "out", "aler", 1)
    [status] = await read_until(gateway, "status", "asst", 1)
    async with gateway.store.transaction() as tx:
        subject = await tx.subject("cf", cf, create=False)
    assert subject is not None
    pseudonym = subject.pseudonym.encode()
    for record in (to_comune, to_aler, status):
        assert record.key and pseudonym not in record.key and pseudonym not in record.value
    assert len({to_comune.key, to_aler.key, status.key}) == 3
