"""Models the pipeline builds without validating again stay identical to validated ones.

The ledger builds each referral's decision and disclosure records with :data:`gateway.audit.record.trusted_record`
and minimisation builds the outgoing envelope with :meth:`Envelope.from_validated`, both without validation.
Here every such model the pipeline builds, for a referral forwarded to FWA, one denied, an emergency (an alert
record), a disclosure with redacted elements and a message no flow declares, is compared with the model
validated from the same values: equal models, equal ``for_log`` objects, the same canonical audit bytes (so the
same leaf and chain hashes) and the same bytes on the recipient's topic. A drift in either path fails here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from adapters.fwa import encode_referral
from gateway.audit.canonical import canonical_json, canonical_json_float_free
from gateway.audit.chain import ChainHead, extend
from gateway.audit.record import AuditRecord, KafkaCoordinates, trusted_record
from gateway.identity.synthetic import generate_tenants
from gateway.partners import built_in
from gateway.pipeline import ledger
from gateway.pipeline.intake import Submission
from gateway.policy.decision import Decision
from gateway.routing import OutboundLabels, decoders_of
from gateway.simulators import aler_arrears_message, comune_emergency
from gateway.store.models import Subject
from schemas.envelope import Envelope, SubjectRef
from schemas.trusted import TrustedBuilder
from tests.pipeline_harness import Pipeline, packaged_registry
from tests.unit.pipeline.test_sensitive_elements_on_memory_store import discharge

RECORDED = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
FWA_REFERRAL = "referral.microcredit"


def _validated_like(record: AuditRecord) -> AuditRecord:
    """The record validated from the values it was built from (and its own record id)."""
    given = {name: getattr(record, name) for name in record.model_fields_set}
    return AuditRecord(**given, record_id=record.record_id)


def assert_same_record(record: AuditRecord) -> None:
    validated = _validated_like(record)
    assert record == validated
    assert record.model_fields_set == validated.model_fields_set - {"record_id"}
    for name in AuditRecord.model_fields:  # the same value of the same type, not only equal
        assert type(getattr(record, name)) is type(getattr(validated, name)), name
    previous = bytes(range(32))
    assert record.for_log(7, previous, RECORDED) == validated.for_log(7, previous, RECORDED)
    body = record.for_log(7, previous, RECORDED)
    assert body == {**validated.model_dump(mode="json", exclude_none=True), "log_index": 7,
                    "prev_chain_hash": previous.hex(), "recorded_at": RECORDED.isoformat()}  # as for_log was written
    assert canonical_json_float_free(body) == canonical_json_float_free(validated.for_log(7, previous, RECORDED))
    assert canonical_json_float_free(body) == canonical_json(body)  # rfc8785 agrees too
    [ours] = extend(ChainHead.genesis(), [record], RECORDED)
    [theirs] = extend(ChainHead.genesis(), [validated], RECORDED)
    assert (ours.canonical, ours.leaf_hash, ours.chain_hash) == (theirs.canonical, theirs.leaf_hash,
                                                                  theirs.chain_hash)


def _envelope_by_model_construct(payload: BaseModel, subject: SubjectRef, **header: Any) -> Envelope:
    """What :meth:`Envelope.from_validated` is documented to build: ``model_construct``'s envelope, with the
    typed payload kept."""
    envelope = Envelope.model_construct(subject=subject, payload=payload.model_dump(mode="json", exclude_none=True),
                                        **header)
    envelope._typed_payload = payload
    return envelope


class Spies:
    """Every audit record the ledger builds without validation, and every envelope minimisation builds."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.envelopes: list[tuple[Envelope, BaseModel, SubjectRef, dict[str, Any]]] = []


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spies]:
    found = Spies()
    real_record = ledger.trusted_record
    real_from_validated = Envelope.from_validated

    def record(**fields: Any) -> AuditRecord:
        built = real_record(**fields)
        found.records.append(built)
        return built

    def from_validated(cls: type[Envelope], payload: BaseModel, subject: SubjectRef, **header: Any) -> Envelope:
        built = real_from_validated(payload, subject, **header)
        found.envelopes.append((built, payload, subject, header))
        return built

    monkeypatch.setattr(ledger, "trusted_record", record)
    monkeypatch.setattr(Envelope, "from_validated", classmethod(from_validated))
    yield found


async def test_the_pipelines_unvalidated_records_and_envelopes_equal_validated_ones(pipeline: Pipeline,
                                                                                   spies: Spies) -> None:
    consenting, without_consent, redacted = list(generate_tenants("S", 11, 3))
    await pipeline.consent(consenting.cf)
    await pipeline.submit("aler", aler_arrears_message(consenting, "trusted-permit"))
    await pipeline.submit("aler", aler_arrears_message(without_consent, "trusted-deny"))
    await pipeline.submit("comune", comune_emergency(redacted.cf, "trusted-emergency"))
    await pipeline.submit("asst", discharge("stay-trusted", "corr-trusted", ("home-care", "psychological-support")),
                          "application/fhir+json")
    unrouted = aler_arrears_message(consenting, "trusted-unrouted")
    unrouted["destinatari"] = ["pis"]  # no flow from ALER's arrears to the emergency service
    await pipeline.submit("aler", unrouted)

    kinds = {(r.event_type, r.outcome, r.flow_id, bool(r.alert), any(label.startswith("REDACTED:")
                                                                       for label in r.labels))
             for r in spies.records}
    assert {("decision", "permit", "F1", False, False), ("disclosure", "permit", "F1", False, False),
            ("decision", "deny", "F1", False, False), ("decision", "permit", "F10-comune", True, False),
            ("disclosure", "permit", "F11", False, True)} <= kinds, kinds
    assert any(r.flow_id is None and r.outcome == "deny" for r in spies.records), kinds
    for record in spies.records:
        assert_same_record(record)

    # The log holds these records in the very bytes the validated records give at their place in it.
    await pipeline.audit()  # verifies the chain and the tree first
    async with pipeline.store.transaction() as tx:
        entries = await tx.audit_entries(0, (await tx.audit_head()).size + 1)
    stored = {json.loads(e["record"])["record_id"]: e["record"] for e in entries}
    for record in spies.records:
        text = stored[record.record_id]
        placed = json.loads(text)
        expected = _validated_like(record).for_log(placed["log_index"], bytes.fromhex(placed["prev_chain_hash"]),
                                                   datetime.fromisoformat(placed["recorded_at"]))
        assert text == canonical_json_float_free(expected).decode()

    assert {envelope.message_type for envelope, *_ in spies.envelopes} >= {FWA_REFERRAL, "emergency.social-event"}
    for envelope, payload, subject, header in spies.envelopes:
        validated = Envelope(subject=subject, payload=payload.model_dump(mode="json", exclude_none=True), **header)
        assert envelope.model_dump() == validated.model_dump()
        assert envelope.model_fields_set == validated.model_fields_set
        assert envelope == _envelope_by_model_construct(payload, subject, **header)
        assert envelope.payload_as(type(payload)) is payload
        if envelope.message_type == FWA_REFERRAL:
            labels = OutboundLabels("consent-1@1", ("NOREDISCLOSE",), ("NOMKT",))
            assert encode_referral(envelope, labels) == encode_referral(validated, labels)
    sent = await pipeline.read("out", "fwa")
    assert len(sent) == 1


def _arrears_envelope(subject_key: bytes) -> tuple[Envelope, Subject]:
    tenant = next(iter(generate_tenants("S", 3, 1)))
    [envelope] = decoders_of(built_in())["aler"](orjson.dumps(aler_arrears_message(tenant, "m-kafka")),
                                                 "application/json")
    subject = Subject(pseudonym="p-" + "a" * 20, subject_key=subject_key)
    envelope = envelope.model_copy(update={"subject": SubjectRef(identifiers=envelope.subject.identifiers,
                                                                 pseudonym=subject.pseudonym)})
    return envelope, subject


@pytest.mark.parametrize("occurred_at", [
    datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2030, 1, 2, 3, 4, 5, 600, tzinfo=timezone(timedelta(hours=1))),
])
def test_a_record_from_kafka_with_a_trace_and_any_time_zone_hashes_as_a_validated_one(occurred_at: datetime) -> None:
    envelope, subject = _arrears_envelope(b"k" * 32)
    envelope = envelope.model_copy(update={"occurred_at": occurred_at})
    flow = next(f for f in packaged_registry().flows if f.id == "F1")
    decision = Decision(decision_id=str(uuid.uuid4()), recipient="fwa", outcome="permit", reason=None, flow=flow,
                        consent_ref="consent-9@2", legal_basis=flow.legal_basis, policy_revision="rev-1",
                        combining_rule="deny-overrides", matched_provision="provision-1",
                        consent_obligations=("NOREDISCLOSE",), consent_refrains=("NOMKT",))
    submission = Submission(sender="aler", sender_role="system", raw=b"{}", content_type="application/json",
                            request_id="req-1", client_id="kafka:aler", token_id="jti-1",
                            kafka=KafkaCoordinates(topic="in.aler", partition=2, offset=41),
                            trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    for disclosed_as, redacted in ((None, ()), ("gw-1", ()), ("gw-2", ("PSY",))):
        record = ledger.decision_record(envelope, submission, ledger.subject_audit_ref(subject), decision, "instance-1",
                                        disclosed_as=disclosed_as, redacted=redacted)
        assert record.kafka is not None and record.trace_id is not None
        assert_same_record(record)


# --- the builder itself ---------------------------------------------------------------------------------------


class _Plain(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    tags: tuple[str, ...] = ()
    note: str | None = None
    token: str = Field(default_factory=lambda: uuid.uuid4().hex)
    _cache: int | None = PrivateAttr(default=None)


def test_the_builder_gives_what_validation_gives_defaults_factories_and_private_attributes() -> None:
    build = TrustedBuilder(_Plain)
    built = build(name="a", tags=("x",))
    validated = _Plain(name="a", tags=("x",), token=built.token)
    assert built == validated and built.model_fields_set == {"name", "tags"}
    assert built.__pydantic_private__ == {"_cache": None} == validated.__pydantic_private__
    assert build(name="a").token != build(name="a").token  # the factory runs per instance
    assert build({"_cache": 3}, name="b")._cache == 3
    assert list(build(name="c").__dict__) == list(_Plain.model_fields)  # field order, as validation keeps it
    with pytest.raises(TypeError, match="missing"):
        build(tags=())
    with pytest.raises(TypeError, match="unknown"):
        build(name="a", colour="red")
    with pytest.raises(TypeError, match="private"):
        build({"_other": 1}, name="a")
    with pytest.raises(Exception, match="frozen"):
        built.name = "b"  # type: ignore[misc]


class _MutableDefault(BaseModel):
    items: list[str] = []


class _TupleOfLists(BaseModel):
    items: tuple[list[str], ...] = (["a"],)


class _Aliased(BaseModel):
    name: str = Field(alias="Name")


class _PostInit(BaseModel):
    name: str

    def model_post_init(self, context: Any, /) -> None:
        pass


class _FactoryReadingData(BaseModel):
    name: str
    upper: str = Field(default_factory=lambda data: data["name"].upper())


@pytest.mark.parametrize("model", [_MutableDefault, _TupleOfLists, _Aliased, _PostInit, _FactoryReadingData])
def test_the_builder_refuses_models_it_cannot_build_as_validation_would(model: type[BaseModel]) -> None:
    with pytest.raises(TypeError):
        TrustedBuilder(model)


def test_the_audit_record_is_a_model_the_builder_accepts() -> None:
    assert isinstance(trusted_record, TrustedBuilder)
    TrustedBuilder(AuditRecord)
