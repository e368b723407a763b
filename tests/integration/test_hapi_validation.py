"""HAPI FHIR's official R4 validator (a real JVM, :mod:`tests.hapi_validator`) on every FHIR golden example.

The valid examples, and the invalid ones the gateway refuses for its own contract rules (a bad check character,
an unknown service), are valid FHIR R4: 0 errors. The invalid ones broken on purpose at the FHIR level (not
JSON, a wrong type, an element FHIR does not have, a missing required element) must be caught by HAPI too,
which also shows the validator is really checking.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hapi_validator import HapiValidator, errors_of

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "asst"
BROKEN_AS_FHIR = {
    "encounter-wrong-type": "Encounter.status",
    "immunization-unknown-field": "nome",
    "service-request-missing-subject": "ServiceRequest.subject",
    "unsupported-resource": "Observation",
    "document-composition-not-first": "bdl-11",
    "document-without-identifier": "bdl-9",
}
"""Invalid examples that are not valid FHIR R4 either, and a word HAPI's first error must mention."""
NOT_JSON = {"malformed-json"}


def _examples(kind: str) -> list[Path]:
    return sorted(p for p in (EXAMPLES / kind).glob("*.json") if not p.name.endswith(".expected.json"))


def test_every_valid_fhir_golden_example_has_no_error(hapi_validator: HapiValidator) -> None:
    paths = _examples("valid")
    assert len(paths) >= 5
    results = hapi_validator.validate(json.loads(p.read_text()) for p in paths)
    found = {p.name: [str(i) for i in errors_of(issues)] for p, issues in zip(paths, results, strict=True)}
    assert found == {p.name: [] for p in paths}


def test_invalid_golden_examples_are_valid_fhir_unless_broken_as_fhir_on_purpose(
        hapi_validator: HapiValidator) -> None:
    paths = [p for p in _examples("invalid") if p.stem not in NOT_JSON]
    assert {p.stem for p in paths} >= set(BROKEN_AS_FHIR)
    broken = [p for p in paths if p.stem in BROKEN_AS_FHIR]
    fhir_valid = [p for p in paths if p.stem not in BROKEN_AS_FHIR]
    results = hapi_validator.validate((json.loads(p.read_text()) for p in broken), broken=True)
    results += hapi_validator.validate(json.loads(p.read_text()) for p in fhir_valid)
    for path, issues in zip([*broken, *fhir_valid], results, strict=True):
        errors = errors_of(issues)
        if path.stem in BROKEN_AS_FHIR:
            assert errors, f"HAPI found nothing wrong in {path.name}"
            assert any(BROKEN_AS_FHIR[path.stem] in f"{e.location} {e.message}" for e in errors), errors
        else:
            assert [str(e) for e in errors] == [], path.name


def test_the_validator_refuses_a_code_that_does_not_exist(hapi_validator: HapiValidator) -> None:
    """The check the F10 AuditEvents once failed: HAPI knows the R4 code systems offline."""
    event = {"resourceType": "AuditEvent",
             "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106"},
             "recorded": "2026-11-20T10:00:00Z", "agent": [{"who": {"display": "gateway"}, "requestor": True}],
             "source": {"observer": {"display": "gateway"}},
             "entity": [{"what": {"display": "message"}, "securityLabel": [
                 {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMERGENCY"}]}]}
    [error] = errors_of(hapi_validator.validate([event], broken=True)[0])
    assert "EMERGENCY" in error.message


@pytest.mark.parametrize("name", sorted(NOT_JSON))
def test_examples_that_are_not_json_are_left_to_the_json_parser(name: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads((EXAMPLES / "invalid" / f"{name}.json").read_text())
