"""A fifth partner is one descriptor and one registry entry: nothing in ``gateway/`` or ``adapters/`` changes.

The Municipio 5 social desk, defined here and nowhere else: its adapter (a decoder of the signals it sends, an
encoder of the case statuses it receives) is a :class:`~adapters.descriptor.PartnerDescriptor`, and its
organisation and two flows are added to a copy of the packaged registry data. A gateway built with them takes
the desk's fragility signal through the real intake to a decision and a delivery to the Comune (in the
Comune's own format, by the Comune's encoder), and delivers the Comune's case status to the desk in the desk's
format (by the desk's encoder), on both pairs of backends.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.descriptor import ContractFormats, OutboundLabels, PartnerDescriptor
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import BusRecord
from gateway.contracts.asyncapi import asyncapi_document, validate_against_channel
from gateway.partners import PARTNERS
from gateway.pipeline import Submission
from gateway.policy import PolicyRegistry, load_registry
from gateway.simulators import comune_case_event
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem, problems_from_validation
from tests.conftest import Backends
from tests.e2e.test_f1_microcredit_referral import audit_records

DESK = "municipio5"
CF = "RSSMRA85T10A562S"
ROOT = Path(__file__).resolve().parents[2]


# --- the desk's adapter: written by whoever connects the desk, in its own package or (here) in a test --------


def decode_desk(raw: bytes, content_type: str) -> list[Envelope]:
    """The desk's ``segnalazione`` (its own JSON) -> one ``tenancy.fragility-signal`` envelope."""
    try:
        message = orjson.loads(raw)
        return [Envelope.model_validate({
            "message_id": message["id"], "correlation_id": message["pratica"],
            "message_type": "tenancy.fragility-signal", "sender": DESK, "recipients": ("comune",),
            "subject": {"identifiers": [{"system": "cf", "value": message["codice_fiscale"]}]},
            "purpose": "social-case-management", "sensitivity": ("S2",), "occurred_at": message["data"],
            "payload": {"signals": message["segnali"], "quartiere": "gratosoglio", "municipio": 5,
                        "household": message["nucleo"]},
        })]
    except ValidationError as error:
        raise DecodeError("contract", "not a valid segnalazione", problems_from_validation(error)) from None
    except (KeyError, TypeError, ValueError) as error:
        raise DecodeError("contract", "not a segnalazione", [FieldProblem("", "shape", str(error))]) from None


def encode_case_status(envelope: Envelope, labels: OutboundLabels) -> bytes:
    """A ``social.case-status`` -> the desk's ``stato-pratica``."""
    return orjson.dumps({"tipo": "stato-pratica", "pratica": envelope.correlation_id,
                         "caso": envelope.payload["case_id"], "stato": envelope.payload["status"],
                         "obblighi": list(labels.obligations)})


DESK_DESCRIPTOR = PartnerDescriptor(organisation=DESK, decode=decode_desk,
                                    encoders={"social.case-status": encode_case_status})


class DeskSignal(BaseModel):
    """The desk's segnalazione: a fragility signal about one person."""

    model_config = ConfigDict(extra="forbid")
    id: str
    pratica: str
    data: str
    codice_fiscale: str
    segnali: list[str]
    nucleo: dict[str, Any]


class DeskCaseStatus(BaseModel):
    """The desk's stato-pratica: what became of a case the Comune took in charge."""

    model_config = ConfigDict(extra="forbid")
    tipo: Literal["stato-pratica"]
    pratica: str
    caso: str
    stato: str
    obblighi: list[str]


PUBLISHED_DESK = dataclasses.replace(DESK_DESCRIPTOR, formats=ContractFormats(
    inbound={f"{DESK}/segnalazione.schema.json": DeskSignal},
    outbound={f"{DESK}/stato-pratica.schema.json": DeskCaseStatus},
    deliveries={(DESK, "social.case-status"): f"{DESK}/stato-pratica.schema.json"},
))
"""The desk once its formats are published: the same descriptor, with the contracts of what it sends and gets."""


# --- its registry entry: the organisation and its flows, added to the packaged registry data ------------------

DESK_ENTRY: dict[str, Any] = {
    "partner": {"code": DESK, "name": "Municipio 5, sportello sociale", "kind": "social-services",
                "entitlements": {"social-case-management": ["system"]}},
    "flows": [
        {"id": "M5-1", "title": "Fragility signal from the Municipio 5 desk to the Comune's social services",
         "sender": DESK, "recipient": "comune", "message_type": "tenancy.fragility-signal",
         "outbound_message_type": "social.case-referral", "purpose": "social-case-management",
         "legal_basis": "GDPR 6(1)(e) public task; 9(2)(h)", "consent": {"required": False}, "sensitivity": "S2",
         "retention_days": 1825, "refrains": ["NORDSCLCD"],
         "allowed_fields": ["subject.cf", "signals", "quartiere", "municipio", "household.type", "household.size",
                            "household.minors", "household.over_65", "household.disability"]},
        {"id": "M5-2", "title": "Social case taken in charge, status back to the Municipio 5 desk",
         "sender": "comune", "recipient": DESK, "message_type": "social.case-event",
         "outbound_message_type": "social.case-status", "purpose": "social-case-management",
         "legal_basis": "GDPR 6(1)(e) public task", "consent": {"required": False}, "sensitivity": "S2",
         "retention_days": 1825, "allowed_fields": ["subject.token", "case_id as token", "event", "status"]},
    ],
}


def registry_with_desk(directory: Path) -> PolicyRegistry:
    """The packaged registry data with :data:`DESK_ENTRY` added, loaded as a deployment loads its own."""
    for name in ("flows.yaml", "purposes.yaml", "partners.yaml", "notices.yaml"):
        text = resources.files("gateway").joinpath("registry", name).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if name == "partners.yaml":
            data["partners"].append(DESK_ENTRY["partner"])
        if name == "flows.yaml":
            data["flows"].extend(DESK_ENTRY["flows"])
        (directory / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_registry(directory)


async def read(gateway: Gateway, recipient: str, count: int) -> list[BusRecord]:
    consumer = gateway.bus.consumer(f"m5-{uuid.uuid4().hex[:8]}", [gateway.settings.topics.name("out", recipient)])
    await consumer.start()
    records: list[BusRecord] = []
    try:
        deadline = time.monotonic() + 60
        while len(records) < count:
            assert time.monotonic() < deadline, f"{len(records)} of {count} records on out.{recipient}"
            records += await consumer.fetch(timeout_s=0.5)
    finally:
        await consumer.stop()
    return records


def test_the_core_and_the_adapters_never_name_the_fifth_partner() -> None:
    """Nothing in gateway/ or adapters/ had to change for the desk: no file there knows its code."""
    naming = [str(path.relative_to(ROOT)) for package in ("gateway", "adapters") for path in (ROOT / package).rglob("*")
              if path.is_file() and path.suffix in {".py", ".yaml", ".json"} and DESK in path.read_text("utf-8")]
    assert naming == []


async def test_a_fifth_partner_added_by_descriptor_and_registry_entry_sends_and_receives(
        backends: Backends, settings_for: Callable[[Backends], object], clients: tuple[PartnerClient, ...],
        tmp_path: Path) -> None:
    settings = await settings_for(backends)  # type: ignore[misc]
    gateway = build(settings, clients=clients, partners=(*PARTNERS, DESK_DESCRIPTOR),
                    registry=registry_with_desk(tmp_path))
    await gateway.start()
    try:
        signal = {"id": "m5-0001", "pratica": "M5-P-0001", "data": "2026-11-20T09:30:00+01:00",
                  "codice_fiscale": CF, "segnali": ["isolation"],
                  "nucleo": {"type": "elderly-single", "size": 1, "minors": False, "over_65": True,
                             "disability": False}}
        [status] = await gateway.intake.submit(Submission(
            sender=DESK, sender_role="system", raw=orjson.dumps(signal), content_type="application/json",
            request_id="req-m5-1"))
        assert (status.state, status.recipients) == ("forwarded", ("comune",))

        [to_comune] = await read(gateway, "comune", 1)
        referral = orjson.loads(to_comune.value)
        assert referral["tipo_messaggio"] == "segnalazione-fragilita"  # the Comune's own format, its encoder
        assert CF in to_comune.value.decode() and "isolation" in to_comune.value.decode()

        case = {**comune_case_event(CF, "MI-SST-2026-000555", "m5-0002", "M5-P-0001"), "destinatari": [DESK]}
        [status] = await gateway.intake.submit(Submission(
            sender="comune", sender_role="system", raw=orjson.dumps(case), content_type="application/json",
            request_id="req-m5-2"))
        assert (status.state, status.recipients) == ("forwarded", (DESK,))

        [to_desk] = await read(gateway, DESK, 1)
        answer = orjson.loads(to_desk.value)  # the desk's own format, by the desk's encoder
        assert answer["tipo"] == "stato-pratica" and answer["pratica"] == "M5-P-0001"
        assert answer["stato"] == "in-charge" and answer["caso"].startswith("gwt_")
        assert "MI-SST-2026-000555" not in to_desk.value.decode() and CF not in to_desk.value.decode()

        decisions = [(r.get("flow_id"), r["outcome"]) for r in await audit_records(gateway)
                     if r["event_type"] == "decision"]
        assert decisions == [("M5-1", "permit"), ("M5-2", "permit")]
    finally:
        await gateway.stop()


def test_the_asyncapi_document_describes_the_fifth_partners_topics_from_its_descriptor(tmp_path: Path) -> None:
    registry = registry_with_desk(tmp_path)
    document = asyncapi_document(registry, (*PARTNERS, PUBLISHED_DESK))
    channels = document["channels"]
    assert list(channels[f"in_{DESK}"]["messages"]) == [f"{DESK}.segnalazione"]
    assert f"{DESK}.stato-pratica" in channels[f"out_{DESK}"]["messages"]
    assert "M5-2" in channels[f"out_{DESK}"]["description"]
    signal = {"id": "m5-0001", "pratica": "M5-P-0001", "data": "2026-11-20T09:30:00+01:00", "codice_fiscale": CF,
              "segnali": ["isolation"], "nucleo": {"type": "elderly-single"}}
    assert validate_against_channel(document, f"in.{DESK}", signal) == []
    assert validate_against_channel(document, f"in.{DESK}", {**signal, "extra": 1}) != []
    answer = {"tipo": "stato-pratica", "pratica": "M5-P-0001", "caso": "gwt_x", "stato": "in-charge",
              "obblighi": ["NORDSCLCD"]}
    assert validate_against_channel(document, f"out.{DESK}", answer) == []
    # An encoder whose format is not described is refused rather than published as something it is not.
    with pytest.raises(ValueError, match="encoders without a described format"):
        asyncapi_document(registry, (*PARTNERS, DESK_DESCRIPTOR))


@pytest.mark.parametrize("body", [b"{}", b"[", b'{"id": "m5-0003"}'])
def test_the_fifth_partners_decoder_refuses_what_it_cannot_read(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_desk(body, "application/json")
