"""Fuzzing every partner decoder besides ALER's arrears referral (fuzzed in test_fuzz_adapters.py): the Comune,
FWA, ASST (FHIR R4, as ``application/fhir+json``) and the ALER dispatcher on its other kinds.

Each gets at least 100,000 inputs from a seeded :class:`random.Random` (a failure names the seed and case
number that rebuild the input), made from the valid golden examples of :mod:`gateway.golden`: keys dropped,
added and renamed, values swapped for other JSON types, unicode and control characters, lone surrogates, odd
numbers and deep nesting; byte flips, truncations, random bytes, other text encodings and content types.

Every call must either return envelopes or raise :class:`DecodeError` with a non-empty ``detail`` and at least
one problem whose ``rule`` and ``message`` are non-empty and whose ``pointer`` is ``""`` or a JSON pointer; no
codice fiscale of a seed message may appear in what the sender is told. Run with ``pytest -s`` to see counts,
runtimes and the distribution of rejection rules.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway.golden import CFS as GOLDEN_CFS
from gateway.golden import CONTENT_TYPES as PARTNER_CONTENT_TYPES
from gateway.golden import VALID
from gateway.routing import DECODERS
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from tests.fuzz.test_fuzz_adapters import (
    CFS as ALER_FUZZ_CFS,
)
from tests.fuzz.test_fuzz_adapters import (
    CONTENT_TYPES,
    Doc,
    Tally,
    byte_flips,
    copy_json,
    counting_unraisables,
    mutate,
    random_string,
    random_value,
)

pytestmark = pytest.mark.fuzz

INPUTS = 100_000
SEED = 20261123
CFS = sorted(set(GOLDEN_CFS) | set(ALER_FUZZ_CFS))
"""Every codice fiscale a fuzz input may carry: none may be echoed back."""


def _seeds(partner: str) -> list[dict[str, Any]]:
    examples = VALID[partner]()
    if partner == "aler":
        del examples["segnalazione-morosita"]  # fuzzed at 100,000 inputs in test_fuzz_adapters.py
    return [json.loads(json.dumps(document)) for document in examples.values()]


SEEDS = {partner: _seeds(partner) for partner in ("aler", "asst", "comune", "fwa")}
SEED_BYTES = {partner: [Doc().dumps(s) for s in seeds] for partner, seeds in SEEDS.items()}
EXTRA_CONTENT_TYPES = ["application/fhir+json", "application/fhir+json; fhirVersion=4.0", "application/fhir+xml",
                       "application/fhir+json; fhirVersion=5.0", "application/json+fhir"]


def partner_input(rng: random.Random, partner: str) -> tuple[bytes, str, str]:
    """(body, content type, category) for one fuzz case."""
    seeds, seed_bytes = SEEDS[partner], SEED_BYTES[partner]
    seed = rng.randrange(len(seeds))
    usual = PARTNER_CONTENT_TYPES[partner]
    content_type = usual if rng.random() < 0.95 else rng.choice(CONTENT_TYPES + EXTRA_CONTENT_TYPES)
    roll = rng.random()
    if roll < 0.50:
        doc = Doc()
        value = copy_json(seeds[seed])
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5))):
            mutate(rng, value, doc)
        return doc.dumps(value, ensure_ascii=rng.random() < 0.7), content_type, "mutated"
    if roll < 0.58:
        doc = Doc()
        return doc.dumps(random_value(rng, doc)), content_type, "random-json"
    if roll < 0.73:
        return byte_flips(rng, seed_bytes[seed]), content_type, "byte-flips"
    if roll < 0.81:
        body = seed_bytes[seed]
        cut = body[: rng.randrange(len(body))]
        tail = rng.choice((b"", b"}", b'"}', b"]}", b"\xff")) if rng.random() < 0.3 else b""
        return cut + tail, content_type, "truncated"
    if roll < 0.87:
        size = rng.choice((0, 1, 2, 8, 64, 300))
        if rng.random() < 0.5:
            return rng.randbytes(size), content_type, "random-bytes"
        return random_string(rng).encode("utf-8", "surrogatepass")[:size], content_type, "random-bytes"
    if roll < 0.93:
        levels = rng.choice((100, 999, 1000, 2000, 5000, 20_000))
        key = rng.choice(sorted(seeds[seed])).encode()
        opener, closer = rng.choice(((b"[", b"]"), (b'{"a":', b"}"), (b'{"' + key + b'":', b"}")))
        closing = closer * (levels if rng.random() < 0.8 else rng.randrange(levels))
        return opener * levels + b"1" + closing, content_type, "deep"
    if roll < 0.97:
        text = seed_bytes[seed].decode().replace("a", "à", 3)
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig", "cp1252"))
        return text.encode(encoding, "replace"), content_type, "encodings"
    return seed_bytes[seed], rng.choice(CONTENT_TYPES + EXTRA_CONTENT_TYPES), "content-type"


def check_decode(tally: Tally, decode: Callable[[bytes, str], list[Envelope]], case: str, body: bytes,
                 content_type: str) -> None:
    tally.calls += 1
    try:
        result = decode(body, content_type)
    except DecodeError as exc:
        tally.kinds[exc.kind] += 1
        if exc.kind not in ("malformed", "contract"):
            tally.fail(f"{case}: unknown kind {exc.kind!r}")
        if not exc.detail:
            tally.fail(f"{case}: empty detail")
        if not exc.problems:
            tally.fail(f"{case}: rejection without problems ({exc.detail})")
        told = [exc.detail]
        for problem in exc.problems:
            tally.rules[problem.rule] += 1
            told.append(problem.message)
            if not problem.rule or not problem.message:
                tally.fail(f"{case}: problem without rule or message: {problem}")
            if not isinstance(problem.pointer, str) or not (problem.pointer == "" or problem.pointer.startswith("/")):
                tally.fail(f"{case}: bad pointer {problem.pointer!r}")
        text = "\n".join(told).upper()
        for cf in CFS:
            if cf in text:
                tally.fail(f"{case}: the codice fiscale is echoed in {told!r}")
    except Exception as exc:
        tally.fail(f"{case}: unhandled {type(exc).__name__}: {str(exc)[:200]} for {body[:200]!r} ({content_type!r})")
    else:
        tally.accepted += 1
        if not (isinstance(result, list) and result and all(isinstance(e, Envelope) for e in result)):
            tally.fail(f"{case}: unexpected result {result!r}")


@pytest.mark.parametrize("partner", sorted(SEEDS))
def test_seed_messages_are_valid(partner: str) -> None:
    for body in SEED_BYTES[partner]:
        assert DECODERS[partner](body, PARTNER_CONTENT_TYPES[partner])


@pytest.mark.slow  # tens of thousands of inputs: a minute or more on a loaded machine
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("partner", ["aler", "asst", "comune", "fwa"])
def test_fuzz_partner_decoder_rejects_every_malformed_input_with_a_reason(partner: str) -> None:
    seed = SEED + sorted(SEEDS).index(partner)
    rng = random.Random(seed)
    tally = Tally(f'DECODERS["{partner}"]' + (" (non-arrears kinds)" if partner == "aler" else ""))
    decode = DECODERS[partner]
    started = time.perf_counter()
    with counting_unraisables(tally):
        for index in range(INPUTS):
            body, content_type, category = partner_input(rng, partner)
            tally.categories[category] += 1
            check_decode(tally, decode, f"seed {seed} case {index} ({category})", body, content_type)
    print("\n" + tally.report(time.perf_counter() - started))
    assert tally.failures == []
    assert not tally.unraisable
    assert tally.calls >= 100_000
    assert tally.calls - tally.accepted > 0.9 * tally.calls  # the inputs really are malformed, mostly
    assert {"malformed", "contract"} <= set(tally.kinds)
