"""The published JSON Schemas of the FHIR R4 the gateway takes from the hospital trust (``contracts/asst/``) agree
with the ASST adapter both ways: what it accepts (golden examples, the official HL7 examples once they follow
the gateway's conventions, generated resources, mutated Bundles) meets them, and what it refuses for a structural
reason (a code outside a binding, a missing element, an unknown element, a wrong system) fails them at the
same place. The rules a schema cannot state (check character, reference resolution, period order, one purpose)
are pinned as passing the schema, so the gap stays documented. The outbound ServiceRequest schema describes
exactly what the encoder writes, which the trust's updates send back in the inbound format."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.asst_fhir import decode, encode_service_request
from adapters.asst_fhir.contract import INBOUND_RESOURCES, outbound_service_request_schema
from adapters.asst_fhir.messages import INBOUND_MESSAGES as FHIR_INBOUND_RESOURCES
from gateway.contracts.asyncapi import asyncapi_document, validate_against_channel
from gateway.contracts.publication import FHIR_INBOUND_FORMATS, FHIR_OUTBOUND_FORMATS
from gateway.policy import load_registry
from gateway.routing import OutboundLabels
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from tests.helpers import dumps
from tests.unit.test_adapter_asst_fhir import (
    _JUNK,
    _SEED_DOCUMENT,
    _SEED_PATHS,
    BINDINGS,
    CARE_SERVICE_SYSTEM,
    CF,
    OFFICIAL,
    PURPOSE_SYSTEM,
    binding_violation,
    bundle,
    by_identifier,
    coding,
    concept,
    consent,
    discharge,
    encounter,
    entry,
    immunization,
    official,
    patient,
    request_envelope,
    service_request,
    service_request_envelopes,
    valid_encounters,
    valid_immunizations,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
EXAMPLES = CONTRACTS / "examples" / "asst"
VALIDATORS = {resource: jsonschema.Draft202012Validator(json.loads(
    (CONTRACTS / "asst" / f"{name}.schema.json").read_text(encoding="utf-8"))) for resource, name in
    INBOUND_RESOURCES.items()}
OUTBOUND = jsonschema.Draft202012Validator(json.loads(
    (CONTRACTS / "asst" / "outbound-service-request.schema.json").read_text(encoding="utf-8")))
DOCUMENT = asyncapi_document(load_registry())


def flagged(resource: str, document: Any) -> set[str]:
    """JSON pointers of the places the schema of ``resource`` finds fault with (empty: it validates)."""
    found: set[str] = set()

    def walk(error: jsonschema.ValidationError) -> None:
        if error.context:
            for sub in error.context:
                walk(sub)
            return
        base = "".join(f"/{part}" for part in error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            found.update(f"{base}/{name}" for name in error.validator_value if name not in error.instance)
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            found.update(f"{base}/{name}" for name in error.instance if name not in error.schema["properties"])
        else:
            found.add(base)

    for error in VALIDATORS[resource].iter_errors(document):
        walk(error)
    return found


def related(first: str, second: str) -> bool:
    """One pointer is the other or lies inside it."""
    return first == second or first.startswith(second + "/") or second.startswith(first + "/")


def accepted(document: Any) -> bool:
    try:
        decode(dumps(document), "application/fhir+json")
    except DecodeError:
        return False
    return True


# --- what the adapter accepts meets the schemas --------------------------------------------------------------


def test_every_inbound_format_is_published_and_referenced_from_the_in_asst_channel() -> None:
    assert sorted(FHIR_INBOUND_FORMATS.values()) == sorted(INBOUND_RESOURCES)
    channel = DOCUMENT["channels"]["in_asst"]["messages"]
    assert sorted(channel) == sorted(f"asst.{INBOUND_RESOURCES[r]}" for r in FHIR_INBOUND_RESOURCES)
    for name in channel:
        message = DOCUMENT["components"]["messages"][name]
        assert message["payload"] == {"$ref": f"#/components/schemas/{name}"}
        assert message["externalDocs"]["url"].endswith(f"contracts/asst/{name.removeprefix('asst.')}.schema.json")
    [outbound] = FHIR_OUTBOUND_FORMATS
    delivered = DOCUMENT["components"]["messages"]["asst.outbound-service-request"]
    assert delivered["payload"] == {"$ref": "#/components/schemas/asst.outbound-service-request"}
    assert "asst.outbound-service-request" in DOCUMENT["channels"]["out_asst"]["messages"]
    assert outbound == "asst/outbound-service-request.schema.json"


@pytest.mark.parametrize("path", sorted(p.name for p in (EXAMPLES / "valid").glob("*.json")))
def test_valid_golden_examples_meet_their_schema_and_the_in_asst_channel(path: str) -> None:
    document = json.loads((EXAMPLES / "valid" / path).read_text(encoding="utf-8"))

    assert accepted(document)
    assert flagged(document["resourceType"], document) == set()
    assert validate_against_channel(DOCUMENT, "in.asst", document) == []


def test_the_adapters_own_test_resources_meet_their_schema() -> None:
    resources = [encounter(), immunization(), service_request(), consent(), discharge(), patient()]
    for document in [*resources, _SEED_DOCUMENT, bundle("batch", entry(patient(), "urn:uuid:1"), entry(encounter()))]:
        assert flagged(document["resourceType"], document) == set(), document["resourceType"]


def _f202_following_the_conventions() -> dict[str, Any]:
    resource = official("Encounter-f202.json")
    resource["meta"] = {"versionId": "1", "lastUpdated": "2013-01-28T14:00:00+01:00"}
    resource["serviceType"] = concept(CARE_SERVICE_SYSTEM, "chronic-follow-up")
    resource["period"] = {"start": "2013-01-28T13:00:00+01:00"}
    return bundle("collection", entry(patient(rid="f201"), "https://fhir.asst.example/Patient/f201", None),
                  entry(resource, None, None))


def _immunization_following_the_conventions() -> dict[str, Any]:
    resource = official("Immunization-example.json")
    resource["vaccineCode"]["coding"].append(coding("http://www.whocc.no/atc", "J07BB02"))
    resource["patient"] = by_identifier(CF, "urn:oid:2.16.840.1.113883.2.9.4.3.2")
    resource["meta"] = {"versionId": "1"}
    return resource


def _consent_following_the_conventions() -> dict[str, Any]:
    resource = official("Consent-consent-example-Out.json")
    resource["patient"] = by_identifier()
    resource["provision"]["type"] = "deny"
    resource["provision"]["purpose"] = [coding(PURPOSE_SYSTEM, "care-coordination")]
    resource["meta"] = {"versionId": "1"}
    return resource


@pytest.mark.parametrize("build", [_f202_following_the_conventions, _immunization_following_the_conventions,
                                   _consent_following_the_conventions])
def test_official_hl7_examples_made_to_follow_the_conventions_meet_the_schema(build: Any) -> None:
    document = build()

    assert accepted(document)
    assert flagged(document["resourceType"], document) == set()


# --- what the adapter refuses for a structural reason fails them ---------------------------------------------

STRUCTURAL_OFFICIAL: dict[str, set[str]] = {
    # file -> the adapter's problems (tests/fixtures/hl7/README.md) that are structural; the others are about
    # references that do not resolve to a codice fiscale, which no schema can see
    "Encounter-example.json": {"/class/code", "/serviceType", "/period/start", "/meta/versionId"},
    "Encounter-f202.json": {"/serviceType", "/period/start", "/meta/versionId"},
    "Immunization-example.json": {"/vaccineCode", "/meta/versionId"},
    "ServiceRequest-example.json": {"/category", "/code", "/requester", "/meta/versionId"},
    "Consent-consent-example-Out.json": {"/provision/type", "/provision/purpose", "/meta/versionId"},
    "Bundle-bundle-transaction.json": {
        "/entry", "/entry/5/request/method", "/entry/6/request/method", "/entry/7/resource/resourceType",
        "/entry/8/request/method", "/entry/9/request/method",
    },
}


def test_the_structural_table_names_only_problems_the_adapter_reports() -> None:
    assert set(STRUCTURAL_OFFICIAL) == set(OFFICIAL) - {"Patient-f201.json"}
    for name, pointers in STRUCTURAL_OFFICIAL.items():
        assert pointers <= OFFICIAL[name], name


@pytest.mark.parametrize("name", sorted(STRUCTURAL_OFFICIAL))
def test_official_hl7_examples_fail_the_schema_where_the_adapter_rule_is_structural(name: str) -> None:
    document = official(name)
    found = flagged(document["resourceType"], document)

    assert not accepted(document)
    assert found
    for pointer in STRUCTURAL_OFFICIAL[name]:
        assert any(related(pointer, place) for place in found) or (
            pointer == "/meta/versionId" and any(related("/identifier", place) for place in found)), pointer
    assert validate_against_channel(DOCUMENT, "in.asst", document)


def test_a_patient_alone_is_no_message_on_the_in_asst_channel() -> None:
    document = official("Patient-f201.json")

    assert not accepted(document)
    assert flagged("Patient", document) == set()  # a valid Patient, as a Bundle may carry it
    assert validate_against_channel(DOCUMENT, "in.asst", document)


NOT_STRUCTURAL = {"period backwards", "request period backwards", "two purposes"}
"""Bindings the adapter checks that no JSON Schema states (an order of two dates, at most one distinct tag)."""


@pytest.mark.parametrize(("what", "builder", "path", "value", "pointer"), BINDINGS, ids=[b[0] for b in BINDINGS])
def test_every_structural_binding_violation_fails_the_schema_at_its_element(
    what: str, builder: Any, path: str, value: Any, pointer: str
) -> None:
    document, pointer = binding_violation(builder, path, value, pointer)
    found = flagged(document["resourceType"], document)

    assert not accepted(document)
    if what in NOT_STRUCTURAL:
        assert found == set()
    else:
        assert any(related(expected, place) for expected in pointer.split() for place in found), found


@pytest.mark.parametrize("name", ["encounter-unknown-service", "encounter-wrong-type",
                                  "service-request-missing-subject", "immunization-unknown-field"])
def test_invalid_golden_examples_with_a_structural_problem_fail_the_schema_there(name: str) -> None:
    document = json.loads((EXAMPLES / "invalid" / f"{name}.json").read_text(encoding="utf-8"))
    expected = json.loads((EXAMPLES / "invalid" / f"{name}.expected.json").read_text(encoding="utf-8"))
    found = flagged(document["resourceType"], document)

    assert any(related(problem["pointer"], place) for problem in expected for place in found), found
    assert validate_against_channel(DOCUMENT, "in.asst", document)


def test_a_bad_check_character_is_beyond_the_schema() -> None:
    document = json.loads((EXAMPLES / "invalid" / "encounter-bad-check-character.json").read_text("utf-8"))

    assert not accepted(document)
    assert flagged("Encounter", document) == set()


def test_a_resource_the_trust_may_not_send_matches_no_message_of_the_channel() -> None:
    document = json.loads((EXAMPLES / "invalid" / "unsupported-resource.json").read_text(encoding="utf-8"))

    assert validate_against_channel(DOCUMENT, "in.asst", document)


# --- property tests ------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_encounters())
def test_generated_valid_encounters_meet_the_schema(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    resource, _ = case
    assert accepted(resource)
    assert flagged("Encounter", resource) == set()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_immunizations())
def test_generated_valid_immunizations_meet_the_schema(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    resource, _ = case
    assert accepted(resource)
    assert flagged("Immunization", resource) == set()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_SEED_PATHS), st.booleans(), _JUNK), min_size=1, max_size=3))
def test_a_mutated_bundle_the_adapter_accepts_meets_the_schema(
    mutations: list[tuple[tuple[Any, ...], bool, Any]]
) -> None:
    """The schemas are a necessary condition: whatever the adapter takes, they take. Documents that are not FHIR
    JSON are left out, where the ``fhir.resources`` models are lenient and the schemas follow FHIR: a null (the
    models read it as absent) and a number for a date or time (the models read it as a Unix timestamp)."""
    document = copy.deepcopy(_SEED_DOCUMENT)
    for path, remove, value in mutations:
        target: Any = document
        try:
            for key in path[:-1]:
                target = target[key]
            if remove and isinstance(target, dict):
                del target[path[-1]]
            else:
                target[path[-1]] = copy.deepcopy(value)
        except (KeyError, IndexError, TypeError):
            continue
    assume(_fhir_json(document))
    if accepted(document):
        assert flagged("Bundle", document) == set()


_DATE_ELEMENTS = frozenset({"lastUpdated", "start", "end", "occurrenceDateTime", "authoredOn", "dateTime"})
"""The date, dateTime and instant elements of the seed document."""


def _fhir_json(value: Any, key: str = "") -> bool:
    if isinstance(value, dict):
        return all(_fhir_json(item, name) for name, item in value.items())
    if isinstance(value, list):
        return all(_fhir_json(item, key) for item in value)
    return value is not None and not (key in _DATE_ELEMENTS and not isinstance(value, str))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(service_request_envelopes(), st.sets(st.sampled_from(["PSEUD", "ENCRYPT"])),
       st.sets(st.sampled_from(["NORDSCLCD", "NOREUSE"])), st.none() | st.just("cns-9@1"))
def test_what_the_encoder_sends_meets_the_outbound_schema_and_comes_back_in_the_inbound_one(
    envelope: Envelope, obligations: set[str], refrains: set[str], consent_ref: str | None
) -> None:
    labels = OutboundLabels(consent_ref, tuple(sorted(obligations)), tuple(sorted(refrains)))

    document = json.loads(encode_service_request(envelope, labels))

    assert list(OUTBOUND.iter_errors(document)) == []
    assert flagged("ServiceRequest", document) == set()
    subject = document["subject"]["identifier"]["value"]
    assert document["text"]["status"] == "generated" and subject not in document["text"]["div"]


def test_the_outbound_schema_is_closed() -> None:
    document = json.loads(encode_service_request(request_envelope(), OutboundLabels(None, (), ())))

    assert outbound_service_request_schema()["additionalProperties"] is False
    assert list(OUTBOUND.iter_errors(document)) == []
    assert list(OUTBOUND.iter_errors({**document, "note": [{"text": "ring twice"}]}))
    assert list(OUTBOUND.iter_errors({**document, "id": "req-1"}))
