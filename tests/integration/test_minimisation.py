"""Minimisation (plan M-01..M-03) and one audit record per decision and per disclosure (T-10, T-11).

M-01: each flow's projection of a full message is pinned field by field; M-02: outgoing data carries the flow's
refrain and obligation labels; M-03: the audit log holds no personal data (codice fiscale patterns, the
fixture's names and identifiers, and every personal value of every partner's golden examples) after a run of
every flow.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.bootstrap import Gateway
from gateway.identity.codice_fiscale import is_valid
from gateway.identity.crosswalk import Crosswalk
from gateway.policy import load_registry, minimise
from gateway.simulators import aler_arrears_message, asst_discharge, comune_case_event, fhir_consent
from schemas.envelope import Envelope
from tests.conftest import bearer
from tests.e2e.test_f1_microcredit_referral import audit_records, tenant

REGISTRY = load_registry()
CF_PATTERN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{6}[0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{2}"
                        r"[A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{3}[A-Za-z](?![A-Za-z0-9])")
"""A codice fiscale standing as a word of its own, in either case; random tokens and hashes that merely
contain sixteen such characters in a row (a token id, a base64 digest) are not codici fiscali."""


def codici_fiscali_in(text: str) -> list[str]:
    """Every valid codice fiscale (check character included) in ``text``."""
    return [match for match in CF_PATTERN.findall(text) if is_valid(match.upper())]


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


async def test_M02_M03_T10_T11_a_run_of_flows_leaves_labels_on_the_wire_and_no_personal_data_in_the_audit(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    people = [tenant(52), tenant(53)]
    aler = await bearer(http, "aler-test")
    assert (await http.post("/v1/consents", json=fhir_consent(people[0].cf), headers=aler)).status_code == 201
    statuses = []
    for i, person in enumerate(people):
        response = await http.post("/v1/partners/aler/messages",
                                   content=orjson.dumps(aler_arrears_message(person, f"m03-{i}")),
                                   headers={**aler, "content-type": "application/json"})
        statuses += response.json()
    await gateway.relay.drain()
    fwa = await bearer(http, "fwa-test")
    inbox = (await http.get("/v1/partners/fwa/inbox", headers=fwa)).json()["messages"]
    assert [m["body"]["etichette"] for m in inbox] == [{"obblighi": ["PSEUD"], "divieti": ["NORDSCLCD", "NOREUSE"]}]

    records = await audit_records(gateway)
    text = json.dumps(records)
    assert codici_fiscali_in(text) == []
    for person in people:
        for value in (person.cf, person.given_name, person.family_name, person.contract_id, person.unit_id):
            assert value.lower() not in text.lower()
    decisions = [r for r in records if r["event_type"] == "decision"]
    disclosures = [r for r in records if r["event_type"] == "disclosure"]
    # T-10/T-11: exactly one decision per (message, recipient), one disclosure per message that crossed
    assert len(decisions) == len(statuses) == 2
    assert len(disclosures) == sum(1 for s in statuses if s["state"] == "forwarded") == 1
    assert {d["decision_id"] for d in disclosures} <= {d["decision_id"] for d in decisions}


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


EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
PERSONAL_KEYS = {"codice_fiscale", "id_contratto", "id_unita", "id_edificio", "id_caso", "telefono_sicuro", "via",
                 "civico", "given", "family", "birthDate"}
"""Native fields whose values identify a person, a home or a case: none may reach the audit log."""


def personal_values(document: object) -> set[str]:
    """Every value under :data:`PERSONAL_KEYS` and every codice fiscale anywhere in a native message."""
    found: set[str] = set()

    def walk(node: object, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str | int) and not isinstance(node, bool):
            text = str(node)
            if key in PERSONAL_KEYS or is_valid(text.upper()):
                found.add(text)

    walk(document, None)
    return found


async def test_M03_the_golden_messages_of_every_partner_leave_no_personal_data_in_the_audit(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    """Every valid golden example (every message type of every partner, so every flow), with an explicit consent
    on record for each person in them: the decisions and disclosures they cause name nobody."""
    documents = {path: orjson.loads(path.read_bytes()) for path in sorted(EXAMPLES.glob("*/valid/*.json"))}
    personal = set().union(*(personal_values(d) for d in documents.values()))
    aler = await bearer(http, "aler-test")
    purposes = tuple(sorted({f.purpose for f in REGISTRY.flows if f.consent.required}))
    recipients = tuple(sorted({f.recipient for f in REGISTRY.flows}))
    for cf in sorted(value for value in personal if is_valid(value.upper())):
        # per purpose (each with the notice shown for it), one consent for any data and one that explicitly
        # permits the sensitive labels (a provision naming labels matches only data carrying them)
        for purpose, labels in itertools.product(purposes, ((), ("SDV", "PSY"))):
            consent = fhir_consent(cf, purposes=(purpose,), recipients=recipients, consent_type="explicit",
                                   security_labels=labels)
            assert (await http.post("/v1/consents", json=consent, headers=aler)).status_code == 201
    for path, document in documents.items():
        partner = path.parent.parent.name
        token = await bearer(http, f"{partner}-test")
        content_type = "application/fhir+json" if partner == "asst" else "application/json"
        response = await http.post(f"/v1/partners/{partner}/messages", content=orjson.dumps(document),
                                   headers={**token, "content-type": content_type})
        assert response.status_code == 202, (path.name, response.text)
    await gateway.relay.drain()

    records = await audit_records(gateway)
    text = json.dumps(records).lower()
    assert codici_fiscali_in(text) == []
    assert sorted(value for value in personal if value.lower() in text) == []
    flows = {r["flow_id"] for r in records if r["event_type"] == "disclosure"}
    assert {"F1", "F2", "F3", "F4", "F5", "F7", "F9", "F10", "F11"} <= flows  # the examples really crossed


async def test_rule16_each_decision_records_its_id_consent_version_policy_revision_rule_and_provision(
    gateway: Gateway,
) -> None:
    """privacy.md rule 16, on the stored records: a permit names all five, and its disclosure points back to it;
    a denial for want of consent names its decision, revision and rule but no consent (rule 13)."""
    from gateway.pipeline import Submission

    people = [tenant(54), tenant(55)]
    consent = await gateway.consents.record(fhir_consent(people[0].cf), "aler", "aler-test", "req-r16")
    for i, person in enumerate(people):
        await gateway.intake.submit(Submission(
            sender="aler", sender_role="system", raw=orjson.dumps(aler_arrears_message(person, f"r16-{i}")),
            content_type="application/json", request_id=f"req-r16-{i}"))
    records = await audit_records(gateway)
    [permit, denial] = [r for r in records if r["event_type"] == "decision"]
    [disclosure] = [r for r in records if r["event_type"] == "disclosure"]
    assert permit["outcome"] == "permit" and permit["decision_id"]
    assert permit["consent_ref"] == f"{consent.consent_id}@1"
    assert permit["policy_revision"] == gateway.registry.revision
    assert permit["combining_rule"] and permit["matched_provision"] == f"consent:{consent.consent_id}@1/provision"
    assert disclosure["decision_id"] == permit["decision_id"]
    assert (denial["outcome"], denial["reason"]) == ("deny", "no-applicable-consent")
    assert denial["decision_id"] not in (None, permit["decision_id"])
    assert denial["policy_revision"] == gateway.registry.revision and denial["combining_rule"]
    assert "consent_ref" not in denial and "matched_provision" not in denial


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
