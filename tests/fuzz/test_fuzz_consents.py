"""Fuzzing the FHIR Consent parser (``gateway.consents.parse_fhir_consent``, R4 and R5 forms) with 20,000 inputs
made by :mod:`tests.fuzz.inputs`: it must answer :class:`~gateway.errors.ContractViolation` with a reason and
nothing else. An unhandled exception would be listed in ``KNOWN_CONSENT_BUGS`` and counted, not hidden (none is:
the two this fuzz found are fixed and pinned). Run with ``pytest -s`` to see the counts and the distribution of
rejection rules. The partners' decoders are fuzzed by ``test_fuzz_every_partner.py`` and
``test_fuzz_aler_csv.py``.
"""

from __future__ import annotations

import random
import time
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from gateway.consents.fhir import EXTENSION_BASE, ORGANISATION_SYSTEM, FhirVersion
from gateway.consents.service import parse_fhir_consent
from gateway.errors import ContractViolation, GatewayError
from gateway.identity.codice_fiscale import omocodic_variant
from gateway.policy.registry import load_registry
from gateway.simulators.partners import fhir_consent
from tests.fuzz.inputs import (
    TENANTS,
    Tally,
    byte_flips,
    check_problems,
    containers,
    copy_json,
    counting_unraisables,
    deep_value,
    random_key,
    random_value,
)
from tests.unit.test_consent_record import as_r5

pytestmark = pytest.mark.fuzz

CONSENT_INPUTS = 20_000
SEED = 20261122

# --- FHIR Consent ----------------------------------------------------------------------------------------------

REGISTRY = load_registry()
_START = datetime(2026, 1, 1, tzinfo=UTC)


def _consent_seeds() -> list[tuple[FhirVersion, dict[str, Any]]]:
    guardian = fhir_consent(TENANTS[3].cf, start=_START, consent_type="explicit", security_labels=("SDV",),
                            purposes=("anti-violence-support",), recipients=("cav",))
    guardian["performer"] = [{"type": "RelatedPerson", "extension": [
        {"url": EXTENSION_BASE + "grantor-role", "valueCode": "support-administrator"},
        {"url": EXTENSION_BASE + "grantor-evidence", "valueString": "Trib. Milano 12/2026"}]}]
    r4 = [
        fhir_consent(TENANTS[0].cf, start=_START),
        fhir_consent(TENANTS[1].cf.lower(), decision="deny", status="inactive", start=_START,
                     cf_system="urn:oid:2.16.840.1.113883.2.9.4.3.2"),
        fhir_consent("STP0303080000001", start=_START, cf_system="https://gateway.quartieri.example/fhir/sid/stp-eni",
                     recipients=("fwa", "comune")),
        fhir_consent(omocodic_variant(TENANTS[2].cf, 2), status="draft", start=_START, recipients=()),
        fhir_consent(TENANTS[4].cf, start=_START, purposes=("microcredit-assessment", "housing-support"),
                     nested=({"type": "deny", "actor": [{"role": {"text": "recipient"}, "reference": {"identifier": {
                         "system": ORGANISATION_SYSTEM, "value": "fwa"}}}],
                         "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                                 "code": "disclose"}]}],
                         "dataPeriod": {"start": "2025-01-01"}},)),
        guardian,
    ]
    return [("4.0", d) for d in r4] + [("5.0", as_r5(d)) for d in r4]


CONSENT_SEEDS = _consent_seeds()

KNOWN_CONSENT_BUGS: dict[tuple[str, str], str] = {}
"""Unhandled exceptions in gateway/consents/fhir.py tolerated by this fuzz (none today: the two it found, an
unmapped status and a partial period date, are fixed and pinned by the regression tests below)."""

CONSENT_RULES_QUOTING_VALUES: frozenset[str] = frozenset()
"""Rules whose messages may repeat a submitted value (none: unknown codes are named by position)."""

KNOWN_UNRAISABLE = (
    "a value nested about 1,000 levels deep (orjson, which the consent route uses, accepts up to 1,024) where "
    "fhir.resources expects an element: its error message quotes the input, pydantic-core cannot repr it, "
    "reports RecursionError to sys.unraisablehook and the problem message reads '<unprintable list object>'; "
    "the Consent is still rejected with ContractViolation"
)


def _signature(exc: BaseException) -> tuple[str, str]:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.replace("\\", "/").endswith(
        "gateway/consents/fhir.py")]
    return type(exc).__name__, frames[-1].name if frames else "?"


CONSENT_EXTRA_STRINGS = ["2026", "2026-01", "2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+01:00",
                         "2026-02-30", "permit", "deny", "active", "draft", "proposed", "inactive", "rejected",
                         "entered-in-error", "weird", "Consent", "Patient", "microcredit-assessment", "fwa", "comune",
                         "http://hl7.it/sid/codiceFiscale",
                         "https://gateway.quartieri.example/fhir/CodeSystem/purpose",
                         "https://gateway.quartieri.example/fhir/sid/organisation"]


def consent_value(rng: random.Random) -> Any:
    if rng.random() < 0.25:
        return rng.choice(CONSENT_EXTRA_STRINGS)
    if rng.random() < 0.05:
        return deep_value(rng.choice((100, 500, 1000, 1023)), rng.random() < 0.5)
    return random_value(rng, None)


def consent_input(rng: random.Random) -> tuple[dict[str, Any] | None, str, FhirVersion]:
    """A mutated Consent (R4 or R5) as the HTTP route hands it over (after ``orjson.loads``), or None if the
    route's own JSON check would already have refused the body."""
    version, seed = rng.choice(CONSENT_SEEDS)
    seed = copy_json(seed)
    roll = rng.random()
    if roll < 0.8:
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            target = rng.choice(containers(seed, []))
            if isinstance(target, dict) and target and rng.random() < 0.3:
                del target[rng.choice(list(target))]
            elif isinstance(target, dict):
                key = rng.choice(list(target)) if target and rng.random() < 0.7 else random_key(rng)
                target[key] = consent_value(rng)
            elif target:
                target[rng.randrange(len(target))] = consent_value(rng)
            else:
                target.append(consent_value(rng))
        return seed, "mutated", version
    body = orjson.dumps(seed)
    body = byte_flips(rng, body) if roll < 0.95 else body[: rng.randrange(len(body))]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, "bytes", version
    return (document if isinstance(document, dict) else None), "bytes", version


def check_consent(tally: Tally, case: str, document: dict[str, Any], version: FhirVersion = "4.0") -> None:
    tally.calls += 1
    try:
        parse_fhir_consent(document, REGISTRY, version)
    except ContractViolation as exc:
        tally.kinds["contract-violation"] += 1
        check_problems(tally, case, exc.detail, exc.problems, may_quote=CONSENT_RULES_QUOTING_VALUES)
    except GatewayError as exc:
        tally.fail(f"{case}: {type(exc).__name__} instead of ContractViolation: {exc.detail}")
    except Exception as exc:
        signature = _signature(exc)
        if signature in KNOWN_CONSENT_BUGS:
            tally.known[f"{signature[0]} in {signature[1]}"] += 1
        else:
            tally.fail(f"{case}: unhandled {signature}: {str(exc)[:200]} for {str(document)[:300]}")
    else:
        tally.accepted += 1


def test_consent_seeds_are_valid_and_each_r5_seed_reads_as_its_r4_form() -> None:
    parsed = [parse_fhir_consent(document, REGISTRY, version) for version, document in CONSENT_SEEDS]
    half = len(parsed) // 2
    assert parsed[:half] == parsed[half:]


@pytest.mark.slow  # tens of thousands of inputs: a minute or more on a loaded machine
def test_fuzz_fhir_consent_rejects_every_malformed_consent_with_a_reason() -> None:
    rng = random.Random(SEED + 1)
    tally = Tally("gateway.consents.parse_fhir_consent")
    started = time.perf_counter()
    index = 0
    with counting_unraisables(tally):
        while tally.calls < CONSENT_INPUTS:
            document, category, version = consent_input(rng)
            index += 1
            if document is None:
                tally.categories["refused by the route's JSON check"] += 1
                continue
            tally.categories[f"R{version[0]} {category}"] += 1
            check_consent(tally, f"seed {SEED + 1} case {index} (R{version[0]} {category})", document, version)
    print("\n" + tally.report(time.perf_counter() - started))
    assert tally.failures == []
    assert set(tally.unraisable) <= {"RecursionError"}, KNOWN_UNRAISABLE
    assert tally.calls >= CONSENT_INPUTS


def test_consent_status_outside_the_status_map_is_a_contract_violation() -> None:
    document = copy_json(CONSENT_SEEDS[0][1])
    document["status"] = "weird"
    with pytest.raises(ContractViolation):
        parse_fhir_consent(document, REGISTRY)


def test_consent_period_with_year_precision_starts_on_the_first_day() -> None:
    document = copy_json(CONSENT_SEEDS[0][1])
    document["provision"]["period"]["start"] = "2026"
    assert parse_fhir_consent(document, REGISTRY)[1].period_start == datetime(2026, 1, 1, tzinfo=UTC)


def test_consent_with_a_lone_surrogate_in_a_quoted_value_is_rejected_with_a_reason() -> None:
    """Regression: fhir.resources' wrong-resource-type message quotes the value; with a lone surrogate in it
    pydantic could not render the errors and problems_from_validation raised UnicodeEncodeError."""
    document = copy_json(CONSENT_SEEDS[0][1])
    document["patient"]["identifier"]["resourceType"] = "\ud800"
    with pytest.raises(ContractViolation) as info:
        parse_fhir_consent(document, REGISTRY)
    assert [(p.pointer, p.rule) for p in info.value.problems] == [("", "string_unicode")]


@pytest.mark.parametrize("value", ["rssmra85t10a562s", ["RSSMRA85T10A562S"], {"cf": "RSSMRA85T10A562S"}])
def test_consent_problem_does_not_quote_a_value_sent_as_resource_type(value: Any) -> None:
    """Regression: fhir.resources' message "expects resource type ``CodeableConcept``, but got ``<value>``"
    repeated whatever was sent, a codice fiscale included."""
    document = copy_json(CONSENT_SEEDS[0][1])
    document["scope"] = {"resourceType": value}
    with pytest.raises(ContractViolation) as info:
        parse_fhir_consent(document, REGISTRY)
    [problem] = info.value.problems
    assert (problem.pointer, problem.rule) == ("/scope/resource_type", "fhir-validation-wrong-resource-type")
    assert "CodeableConcept" in problem.message
    assert "(value withheld)" in problem.message
    assert "RSSMRA85T10A562S" not in problem.message.upper()
