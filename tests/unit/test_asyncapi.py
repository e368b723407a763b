"""The AsyncAPI document of the Kafka topics: valid for the official parser, a channel for every topic, and
real messages (what partners send, what the gateway's own code writes) valid against their channel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import typing
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from adapters.asst_fhir import inbound as asst_inbound
from adapters.asst_fhir.messages import INBOUND_MESSAGES as FHIR_INBOUND_RESOURCES
from gateway.bootstrap import Gateway
from gateway.bus.port import BusRecord
from gateway.contracts.asyncapi import (
    StatusMessage,
    asyncapi_document,
    channel_id,
    validate_against_channel,
)
from gateway.errors import ContractViolation, FieldProblem
from gateway.identity.crosswalk import Crosswalk
from gateway.identity.synthetic import generate_tenants
from gateway.pipeline import ledger
from gateway.pipeline.consumer import InboundConsumer
from gateway.policy import PolicyRegistry, load_registry, minimise
from gateway.policy.consent import ConsentRecord
from gateway.routing import DECODERS, ENCODERS, OutboundLabels, encode_canonical
from gateway.settings import TopicSettings
from gateway.simulators import (
    aler_arrears_message,
    asst_discharge,
    asst_encounter,
    comune_case_event,
    comune_emergency,
    fwa_outcome,
)
from gateway.store.models import MessageStatus
from schemas.envelope import SubjectRef
from schemas.messages import ReferralStatus

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "asyncapi"
CF = "RSSMRA85T10A562S"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TOPICS = TopicSettings(prefix="")


@pytest.fixture(scope="module")
def registry() -> PolicyRegistry:
    return load_registry()


@pytest.fixture(scope="module")
def document(registry: PolicyRegistry) -> dict[str, Any]:
    return asyncapi_document(registry)


def _decoded(headers: tuple[tuple[str, bytes], ...] | tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in headers}


def _no_tool(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: scripts/test.sh installs it (npm ci --prefix tools/asyncapi)")
    pytest.skip(f"{reason}: run npm ci --prefix tools/asyncapi --no-audit --no-fund")


def test_the_official_asyncapi_parser_accepts_the_published_document() -> None:
    node = shutil.which("node")
    if node is None:
        _no_tool("Node.js is not installed")
    if not (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir():
        _no_tool("the AsyncAPI parser is not installed under tools/asyncapi/node_modules")
    assert node is not None
    result = subprocess.run([node, str(TOOL / "validate.mjs"), "contracts/asyncapi.json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=180, check=False)
    report = json.loads(result.stdout)
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert errors == []
    assert result.returncode == 0, result.stderr
    assert report["valid"] is True and report["asyncapi"] == "3.0.0"


def test_every_topic_the_gateway_creates_has_a_channel(registry: PolicyRegistry, document: dict[str, Any]) -> None:
    stand_in = SimpleNamespace(settings=SimpleNamespace(topics=TOPICS), registry=registry)
    topics = Gateway.topics(typing.cast(Gateway, stand_in))
    assert sorted(c["address"] for c in document["channels"].values()) == sorted(topics)
    for topic in topics:
        assert document["channels"][channel_id(topic)]["address"] == topic
    assert channel_id("in.aler") == "in_aler" and channel_id("s4.out.cav") == "s4_out_cav"


def test_every_reference_resolves_inside_the_document(document: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part]
    assert "$defs" not in json.dumps(document)


def test_operations_follow_the_gateway_point_of_view(document: dict[str, Any]) -> None:
    actions = {document["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]: op["action"]
               for op in document["operations"].values()}
    assert {t for t, a in actions.items() if a == "receive"} == {f"in.{p}" for p in DECODERS}
    assert all(a == "send" for t, a in actions.items() if not t.startswith("in."))
    assert {"out.fwa", "status.aler", "dlq.aler", "s4.out.cav", "gateway.consent-events"} <= set(actions)


def test_the_checked_in_document_is_the_generated_one(document: dict[str, Any]) -> None:
    on_disk = json.loads((ROOT / "contracts" / "asyncapi.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(document))


# ---------------------------------------------------------------------------------------------- partner messages


def _inbound_examples() -> list[tuple[str, Any]]:
    tenants = list(generate_tenants("S", seed=5, limit=20))
    return [
        *(("aler", aler_arrears_message(t, f"m{i}")) for i, t in enumerate(tenants)),
        ("comune", comune_case_event(CF, "MI-SST-2026-000123", "c-1", "corr-1")),
        ("comune", comune_emergency(CF, "c-2")),
        ("fwa", fwa_outcome("gw-referral-1", "f-1", "corr-1")),
        ("fwa", fwa_outcome("gw-referral-2", "f-2", "corr-2", esito="respinto", amount=None)),
        ("asst", asst_encounter(CF, "enc-1", "corr-1")),
        ("asst", asst_discharge(CF, "stay-1", "corr-2")),
        ("aler", _aler("segnalazione-fragilita", "a-2", "social-case-management", ["comune"]) | {
            "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "S. Siro", "municipio": 7},
            "intestatario": {"codice_fiscale": CF},
            "nucleo": {"tipologia": "adult-with-over-65", "componenti": 2, "presenza_minori": False,
                       "presenza_over_65": True, "presenza_disabilita": True},
            "segnali": ["isolation", "degraded-housing"]}),
        ("aler", _aler("richiesta-assistenza", "a-4", "care-coordination", ["asst"]) | {
            "id_richiesta": "ALER-R-0001", "assistito": {"codice_fiscale": CF}, "servizio": "telemedicina",
            "urgenza": "urgente", "finestra": {"dal": "2026-11-23", "al": "2026-11-30"}}),
        ("aler", _aler("segnalazione-riservata", "a-7", "anti-violence-support", ["cav"], correlation=False) | {
            "persona": {"codice_fiscale": CF},
            "contatto": {"canale": "telefono-sicuro", "telefono_sicuro": "+39 333 123-4567",
                         "fascia_oraria": "weekday-morning"}}),
        ("aler", _aler("evento-sfratto", "a-9", "housing-support", ["comune", "fwa"]) | {
            "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
            "intestatario": {"codice_fiscale": CF},
            "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"}}),
    ]


def _aler(kind: str, message_id: str, purpose: str, recipients: list[str], correlation: bool = True) -> dict[str, Any]:
    header = {"id_messaggio": message_id, "id_correlazione": f"corr-{message_id}", "tipo_messaggio": kind,
              "versione": "1.0", "data_evento": "2026-11-20T09:30:00+01:00", "finalita": purpose,
              "destinatari": recipients}
    if not correlation:  # a confidential referral carries no correlation id
        del header["id_correlazione"]
    return header


def _content_type(partner: str) -> str:
    return "application/fhir+json" if partner == "asst" else "application/json"


def test_what_partners_send_validates_against_their_in_channel(document: dict[str, Any]) -> None:
    for partner, message in _inbound_examples():
        raw = orjson.dumps(message)
        assert DECODERS[partner](raw, _content_type(partner))  # the adapter accepts it too
        problems = validate_against_channel(document, f"in.{partner}", orjson.loads(raw),
                                            {"content-type": _content_type(partner), "request-id": "req-1"})
        assert problems == [], (partner, message.get("tipo_messaggio", message.get("resourceType")))


def test_a_message_the_channel_does_not_carry_is_reported_without_its_values(document: dict[str, Any]) -> None:
    tenant = next(generate_tenants("S", seed=5, limit=1))
    message = orjson.loads(orjson.dumps(aler_arrears_message(tenant, "m")))
    message["nome"] = "Mario Rossi"
    problems = validate_against_channel(document, "in.aler", message)
    assert problems and any("'nome' was unexpected" in p for p in problems)
    assert all("Mario" not in p and tenant.cf not in p for p in problems)
    assert validate_against_channel(document, "in.comune", orjson.loads(orjson.dumps(
        aler_arrears_message(tenant, "m"))))
    assert validate_against_channel(document, "in.pis", {}) == ["channel in.pis carries no messages"]
    assert validate_against_channel(document, "in.nobody", {}) == ["no channel has the address in.nobody"]
    assert validate_against_channel(document, "in.asst", {"resourceType": "Patient"})


def test_a_deployment_prefix_is_removed_from_the_address(document: dict[str, Any]) -> None:
    message = fwa_outcome("gw-referral-1", "f-1", "corr-1")
    assert validate_against_channel(document, "run42-in.fwa", message, prefix="run42-") == []


# ---------------------------------------------------------------------------------------------- gateway messages


def _deliveries(registry: PolicyRegistry, partner: str, message: Any) -> list[tuple[str, Any, dict[str, str]]]:
    """What the intake would write for ``message`` if every flow permitted it: topic, value, headers."""
    tokenise = Crosswalk(b"k" * 32).token
    written = []
    for envelope in DECODERS[partner](orjson.dumps(message), _content_type(partner)):
        envelope = envelope.model_copy(update={"subject": SubjectRef(
            identifiers=envelope.subject.identifiers, pseudonym="psn-0123456789abcdef")})
        for flow in registry.flows_for(envelope.sender, envelope.message_type, envelope.purpose or ""):
            if envelope.recipients and flow.recipient not in envelope.recipients:
                continue
            outgoing = minimise(envelope, flow, "gw-00000000-0000-0000-0000-000000000001", tokenise)
            labels = OutboundLabels("cns-1@1" if flow.consent.required else None, flow.obligations, flow.refrains)
            value = ENCODERS.get((flow.recipient, flow.outbound_message_type), encode_canonical)(outgoing, labels)
            headers = ledger.headers(outgoing.message_id, envelope.correlation_id, "req-1",
                                     flow.outbound_message_type, envelope.schema_version, flow.purpose)
            topic = TOPICS.name("s4.out" if flow.restricted_topic else "out", flow.recipient)
            written.append((topic, orjson.loads(value), _decoded(headers)))
    return written


def test_what_the_gateway_delivers_validates_against_the_recipient_channel(
    registry: PolicyRegistry, document: dict[str, Any]
) -> None:
    delivered: set[tuple[str, str]] = set()
    for partner, message in _inbound_examples():
        for topic, value, headers in _deliveries(registry, partner, message):
            assert validate_against_channel(document, topic, value, headers) == [], (topic, headers["message-type"])
            delivered.add((topic, headers["message-type"]))
    native = {(f"out.{recipient}", kind) for recipient, kind in ENCODERS}
    assert native <= delivered  # every encoder's format was checked
    assert {("out.aler", "social.case-status"), ("out.fwa", "tenancy.eviction-milestone"),
            ("s4.out.cav", "safety.disclosure")} <= delivered  # canonical envelopes too


def test_a_delivery_on_the_wrong_topic_or_with_the_wrong_headers_is_reported(
    registry: PolicyRegistry, document: dict[str, Any]
) -> None:
    [(topic, value, headers)] = _deliveries(registry, "comune", comune_emergency(CF, "c-2"))
    assert topic == "out.pis"
    assert validate_against_channel(document, "out.fwa", value, headers)
    assert validate_against_channel(document, topic, value, {**headers, "message-type": "care.encounter"})
    assert validate_against_channel(document, topic, value, {k: v for k, v in headers.items() if k != "purpose"})


def test_status_messages_validate_against_the_status_channel(document: dict[str, Any]) -> None:
    for state, reason, recipients in (("forwarded", None, ("fwa",)), ("denied", "not-authorised", ())):
        status = MessageStatus(sender="aler", message_id="m-1", correlation_id="corr-1",
                               message_type="tenancy.arrears-referral", state=state, reason_class=reason,
                               recipients=recipients, received_at=NOW, request_id="req-1")
        row = ledger.status_row(status, b"k", TOPICS, NOW)
        assert row.topic == "status.aler"
        assert validate_against_channel(document, row.topic, orjson.loads(row.value), dict(row.headers)) == []
    assert typing.get_args(StatusMessage.model_fields["state"].annotation) == typing.get_args(
        ReferralStatus.model_fields["state"].annotation)


def test_dead_letter_entries_validate_against_the_dlq_channel(document: dict[str, Any]) -> None:
    consumer = InboundConsumer(typing.cast(Any, None), typing.cast(Any, None), TOPICS, ["aler"])
    record = BusRecord(topic="in.aler", partition=2, offset=41, key=b"k", value=b"{}",
                       headers=(("message-id", b"m-1"),), timestamp_ms=0)
    error = ContractViolation("the message breaks ALER's contract",
                              [FieldProblem("/morosita/importo_euro", "decimal_parsing", "send an amount")])
    dead = consumer._dead_letter(record, "aler", "req-1", error)
    assert dead.topic == "dlq.aler"
    assert validate_against_channel(document, dead.topic, orjson.loads(dead.value), _decoded(dead.headers)) == []


def test_consent_events_and_restriction_notices_validate_against_their_channels(document: dict[str, Any]) -> None:
    record = ConsentRecord(consent_id="cns-1", version=2, subject_pseudonym="psn-1", status="inactive",
                           decision="permit", purposes=frozenset({"microcredit-assessment"}),
                           recipients=frozenset({"fwa"}), recorded_at=NOW, withdrawn=True)
    event = ledger.consent_withdrawn_event(record, TOPICS, NOW, "req-1")
    notices = ledger.restriction_notices(record, [("fwa", "gw-1"), ("asst", "gw-2"), ("cav", "gw-3")], TOPICS, NOW,
                                         "req-1")
    for row in (event, *notices):
        assert validate_against_channel(document, row.topic, orjson.loads(row.value), dict(row.headers)) == []
    assert event.topic == "gateway.consent-events"


def test_fhir_resources_named_are_those_the_asst_adapter_translates() -> None:
    translated = set(asst_inbound._MESSAGE_RESOURCES)
    assert set(FHIR_INBOUND_RESOURCES) == translated | {"Bundle"}


def test_the_document_tells_consumers_delivery_is_at_least_once_and_to_deduplicate_by_message_id(
        document: dict[str, Any]) -> None:
    assert "at least once" in document["info"]["description"]
    assert "deduplicate by message-id" in document["info"]["description"]
    written = [c for c in document["channels"].values()
               if c["address"].split(".")[0] in ("out", "status", "s4") and c["messages"]]
    assert written
    for channel in written:
        assert "deduplicate by the message-id header" in channel["description"], channel["address"]
        for ref in channel["messages"].values():
            message = document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            assert "message-id" in message["headers"]["required"], (channel["address"], ref)
    for channel in (c for c in document["channels"].values() if c["address"].startswith("dlq.") and c["messages"]):
        assert "source topic, partition and offset" in channel["description"]
