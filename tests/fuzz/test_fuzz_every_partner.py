"""Fuzzing every partner's decoder, as the intake calls it (:data:`gateway.routing.DECODERS`: behind the strict
JSON check), for every descriptor of :data:`gateway.partners.PARTNERS` that sends JSON.

Each gets 100,000 inputs made by :func:`tests.fuzz.inputs.json_input` from the partner's valid golden examples
(a failure names the seed and case number that rebuild the input). Every call must either return envelopes from
the partner or raise :class:`DecodeError` with a reason (:func:`tests.fuzz.inputs.check_problems`); nothing else
may escape. ALER's CSV exports have a fuzz of their own (``test_fuzz_aler_csv.py``); a bounded hypothesis run of
the same kind is in the shared adapter suite (``tests/unit/test_every_partner.py``). Run with ``pytest -s`` to
see counts, runtimes and the distribution of rejection rules.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.descriptor import PartnerDescriptor
from gateway.partners import PARTNERS
from gateway.routing import DECODERS
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from tests.fuzz.inputs import Doc, Tally, check_problems, json_input, run

pytestmark = pytest.mark.fuzz

INPUTS = 100_000
SEED = 20261123
SENDERS = [p for p in PARTNERS if p.decode is not None and p.examples is not None]
OTHER_CONTENT_TYPES = ["application/fhir+json", "application/fhir+json; fhirVersion=4.0", "application/fhir+xml",
                       "application/fhir+json; fhirVersion=5.0", "application/json+fhir"]


def seeds(partner: PartnerDescriptor) -> list[Any]:
    assert partner.examples is not None
    return [json.loads(json.dumps(document)) for document in partner.examples.valid().values()]


def check_decode(tally: Tally, partner: PartnerDescriptor, case: str, body: bytes, content_type: str) -> None:
    tally.calls += 1
    try:
        result = DECODERS[partner.organisation](body, content_type)
    except DecodeError as exc:
        tally.kinds[exc.kind] += 1
        if exc.kind not in ("malformed", "contract"):
            tally.fail(f"{case}: unknown kind {exc.kind!r}")
        check_problems(tally, case, exc.detail, exc.problems)
    except Exception as exc:
        tally.fail(f"{case}: unhandled {type(exc).__name__}: {str(exc)[:200]} for {body[:200]!r} ({content_type!r})")
    else:
        tally.accepted += 1
        if not (isinstance(result, list) and result
                and all(isinstance(e, Envelope) and e.sender == partner.organisation for e in result)):
            tally.fail(f"{case}: unexpected result {result!r}")


@pytest.mark.parametrize("partner", SENDERS, ids=lambda p: p.organisation)
def test_seed_messages_are_valid(partner: PartnerDescriptor) -> None:
    for document in seeds(partner):
        assert DECODERS[partner.organisation](Doc().dumps(document), partner.content_type)


@pytest.mark.slow  # tens of thousands of inputs: a minute or more on a loaded machine
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("partner", SENDERS, ids=lambda p: p.organisation)
def test_fuzz_partner_decoder_rejects_every_malformed_input_with_a_reason(partner: PartnerDescriptor) -> None:
    partner_seeds = seeds(partner)
    tally = Tally(f'DECODERS["{partner.organisation}"]')
    run(tally, SEED + SENDERS.index(partner), INPUTS,
        lambda rng: json_input(rng, partner_seeds, partner.content_type, OTHER_CONTENT_TYPES),
        lambda case, body, content_type: check_decode(tally, partner, case, body, content_type),
        rejected_share=0.9, rules=("json", "utf-8", "type", "content-type", "number-range", "max-depth"))
