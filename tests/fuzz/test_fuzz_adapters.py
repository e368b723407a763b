"""Fuzzing the partner-facing parsers: no input may escape as anything but a rejection with a reason.

``adapters.aler.decode`` gets at least 100,000 malformed inputs from a seeded :class:`random.Random` (fast and
reproducible: a failure names the seed and case number that rebuild the input) plus a smaller hypothesis run;
``gateway.consents.parse_fhir_consent`` gets 20,000 (R4 and R5 forms). Inputs are valid messages with keys
dropped, added and renamed, values swapped for other JSON types, unicode and control characters, lone
surrogates, huge and oddly written numbers, 2,000-level nesting and empty containers; random bytes; truncated
bodies; byte flips of valid encodings; other text encodings and content types.

Every call must either return envelopes or raise :class:`DecodeError` with a non-empty ``detail`` and at least
one :class:`FieldProblem` whose ``rule`` and ``message`` are non-empty and whose ``pointer`` is ``""`` or a
JSON pointer; the submitted codice fiscale must never appear in what the sender is told. For consents the
same holds with :class:`~gateway.errors.ContractViolation`; an unhandled exception there would be listed in
``KNOWN_CONSENT_BUGS`` and counted, not hidden (none is: the two this fuzz found are fixed and pinned). Run
with ``pytest -s`` to see the counts and the distribution of rejection rules.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.aler import decode
from gateway.consent_fhir import EXTENSION_BASE, ORGANISATION_SYSTEM, FhirVersion
from gateway.consents import parse_fhir_consent
from gateway.errors import ContractViolation, GatewayError
from gateway.identity.codice_fiscale import omocodic_variant
from gateway.identity.synthetic import generate_tenants
from gateway.policy.registry import load_registry
from gateway.simulators.partners import aler_arrears_message, fhir_consent
from schemas.codelists import load_codelist
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from tests.unit.test_consent_record import as_r5

pytestmark = pytest.mark.fuzz

ALER_INPUTS = 100_000
CONSENT_INPUTS = 20_000
SEED = 20261122

# --- seed messages ------------------------------------------------------------------------------------------

_TENANTS = [t for t in generate_tenants("S", seed=31, limit=200) if t.arrears_cents > 0][:8]
_OCCURRED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def _aler_seeds() -> list[dict[str, Any]]:
    seeds = [aler_arrears_message(t, f"m-{i}", occurred_at=_OCCURRED) for i, t in enumerate(_TENANTS)]
    seeds[1]["intestatario"]["codice_fiscale"] = omocodic_variant(_TENANTS[1].cf, 3).lower()
    seeds[2]["intestatario"]["codice_fiscale"] = "STP0303080000001"
    for key in ("id_correlazione", "finalita", "destinatari"):
        del seeds[3][key]
    del seeds[3]["isee"]["valore_euro"], seeds[3]["morosita"]["dal"]
    seeds[4]["contratto"]["quartiere"] = "Molise Calvaire"
    seeds[5]["morosita"]["importo_euro"] = _raw_placeholder_for_seed("1234.5")
    return seeds


_SEED_RAW: list[str] = []


def _raw_placeholder_for_seed(text: str) -> str:
    _SEED_RAW.append(text)
    return f"@@seed:{len(_SEED_RAW) - 1}@@"


ALER_SEEDS = _aler_seeds()
CFS = sorted({s["intestatario"]["codice_fiscale"].upper() for s in ALER_SEEDS} | {t.cf for t in _TENANTS})
"""Every codice fiscale a fuzz input may carry: none may be echoed back."""

# --- serialisation with raw JSON text ------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r'"@@(raw|seed):(\d+)@@"')


class Doc:
    """A JSON document under construction; ``raw(text)`` stands for JSON text json.dumps cannot write
    (huge integers, NaN, exponents, 2,000-level nesting)."""

    def __init__(self) -> None:
        self.raws: list[str] = []

    def raw(self, text: str) -> str:
        self.raws.append(text)
        return f"@@raw:{len(self.raws) - 1}@@"

    def dumps(self, value: Any, *, ensure_ascii: bool = True) -> bytes:
        text = json.dumps(value, ensure_ascii=ensure_ascii)

        def put(match: re.Match[str]) -> str:
            table = self.raws if match.group(1) == "raw" else _SEED_RAW
            return table[int(match.group(2))]

        return _PLACEHOLDER.sub(put, text).encode("utf-8", "surrogatepass")


ALER_SEED_BYTES = [Doc().dumps(s) for s in ALER_SEEDS]


def copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


# --- random values -------------------------------------------------------------------------------------------

_CODES = sorted({code for name in ("household_types", "isee_bands", "arrears_stages", "request_types", "quartieri",
                                   "rent_bands", "arrears_kinds", "contract_types")
                 for code in load_codelist(name).labels_it})
STRINGS = [
    "", " ", "\t\n", "\x00", "\x1f", "\x7f", "a\x00b", "\u200b", "\u202e", "\ufeff", "\ufffd", "è", "€ 12,30",
    "Morosità", "日本語", "\U0001f600", "e\u0301", "\ud800", "\udfff", "\ud83d", "a\udc00b", "\ud800\ud800",
    "null", "true", "NaN", "Infinity", "-0", "0", "-0.00", "1e999999999", "1E+3", "0x10", "1_000", "12,30",
    "1234.567", "10000000.01", "  12.30  ", "+1", "∞", "٣", "1" * 40, "x" * 65, "x" * 10_000,
    "segnalazione-morosita", "1.0", "2.0", "SAP", "SAT", "canone", "spese", "utenze", "fwa", "aler",
    "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31T23:59:59-23:59", "2026-11-20T09:30:00", "ieri",
    "2026-11-20T25:00:00Z", "STP0303080000001", "ENI000", "STP", "RSSMRA85T10A562T", "rssmra85t10a562",
    "RSSMRA85T10A562S ", "MRTMTT25D09F205Z", "Molise Calvaire", "S. Siro", "../../etc/passwd", "<script>",
    "'; DROP TABLE x; --", "%s%n", "{}", "[]", "\\", '"',
    *_CODES,
]
NUMBERS = [
    "0", "-0", "1", "-1", "9", "10", "20", "21", "600", "601", "0.0", "1.5", "-1.5", "0.001", "0.01", "12.345",
    "1e2", "1E+2", "1e-2", "1.0e0", "-0.0", "1e308", "1e309", "-1e309", "4.9e-324", "1e-400", "1e1000",
    "1e-1000", "1e1001", "1e-1001", "1e999999999", "-1e999999999", "1e-999999999", "9" * 4300, "9" * 4301,
    "-" + "9" * 4300, "0." + "0" * 5000 + "1", "1" + "0" * 30, "18446744073709551616", "9223372036854775808",
    "10000000", "10000000.00", "10000000.01", "1234567890123", "NaN", "Infinity", "-Infinity",
]


def random_string(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(STRINGS)
    if roll < 0.75:
        return "".join(chr(rng.randrange(0x20, 0x7f)) for _ in range(rng.randrange(0, 24)))
    if roll < 0.9:
        ranges = ((0, 0x20), (0x80, 0x800), (0xD800, 0xE000), (0xE000, 0x110000))
        return "".join(chr(rng.randrange(*rng.choice(ranges))) for _ in range(rng.randrange(1, 12)))
    base = rng.choice(_CODES + CFS)
    return mutate_text(rng, base)


def mutate_text(rng: random.Random, text: str) -> str:
    """A near miss: one character changed, case flipped, padded or cut."""
    roll = rng.randrange(6)
    if roll == 0 and text:
        i = rng.randrange(len(text))
        return text[:i] + chr(rng.randrange(0x20, 0x250)) + text[i + 1:]
    if roll == 1:
        return text.swapcase()
    if roll == 2:
        return f" {text}\t"
    if roll == 3 and text:
        return text[: rng.randrange(len(text))]
    if roll == 4:
        return text + rng.choice(["x", "\x00", "\u0301", "\ud800", "-"])
    return text.replace("-", "_").replace("a", "à")


def random_value(rng: random.Random, doc: Doc | None, depth: int = 0) -> Any:
    """Any JSON value; with a ``doc``, also raw number text and deep nesting json.dumps cannot write."""
    roll = rng.randrange(16 if doc is not None else 13)
    if roll == 0:
        return None
    if roll == 1:
        return rng.random() < 0.5
    if roll == 2:
        return rng.choice((0, 1, -1, 7, 10, 21, 600, 601, 2**31, -(2**63), 2**64, 10**20))
    if roll == 3:
        return rng.choice((0.0, -0.0, 0.5, 1.5, -1.25, 1e-7, 1e300, 5e-324, 1234.567, 0.1 + 0.2))
    if roll <= 6:
        return random_string(rng)
    if roll == 7:
        return rng.choice(([], {}, [[]], [{}], {"": {}}))
    if roll in (8, 9) and depth >= 3:
        return random_string(rng)
    if roll == 8:
        return [random_value(rng, doc, depth + 1) for _ in range(rng.randrange(1, 4))]
    if roll == 9:
        return {random_key(rng): random_value(rng, doc, depth + 1) for _ in range(rng.randrange(1, 4))}
    if roll == 10:
        return deep_value(rng.randrange(2, 60), rng.random() < 0.5)
    if roll == 11:
        return rng.choice([rng.randrange(-(10**6), 10**6), rng.random() * 10 ** rng.randrange(-5, 10)])
    if roll == 12:
        return rng.choice(CFS).lower() if rng.random() < 0.5 else random_string(rng)
    assert doc is not None
    if roll <= 14:
        return doc.raw(rng.choice(NUMBERS))
    levels = rng.choice((500, 999, 1000, 1500, 2000, 5000))
    opener, closer = rng.choice((("[", "]"), ('{"a": ', "}"), ('[{"a": ', "}]")))
    return doc.raw(opener * levels + rng.choice(("1", "[]", "{}", "null")) + closer * levels)


def deep_value(levels: int, as_list: bool) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value] if as_list else {"a": value}
    return value


def random_key(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(("nome", "cognome", "note", "id", "tipo", "importo", "valore_euro", "isee", "extra",
                           "resourceType", "__proto__", "", " ", "a/b", "~0", "~1", "\x00", "\ud800", "é"))
    return random_string(rng)[:40]


# --- structured mutation -------------------------------------------------------------------------------------


def containers(value: Any, out: list[Any], depth: int = 0) -> list[Any]:
    """Every object and array in ``value`` down to 20 levels (mutations need not reach into deep nesting)."""
    if isinstance(value, dict | list) and depth <= 20:
        out.append(value)
        for item in (value.values() if isinstance(value, dict) else value):
            containers(item, out, depth + 1)
    return out


def _swap_type(rng: random.Random, doc: Doc, current: Any) -> Any:
    while True:
        value = random_value(rng, doc)
        if type(value) is not type(current):
            return value


def mutate(rng: random.Random, value: dict[str, Any], doc: Doc) -> None:
    """Apply one structural mutation in place somewhere in ``value``."""
    target = rng.choice(containers(value, []))
    op = rng.randrange(9)
    if isinstance(target, list):
        if op < 3 and target:
            del target[rng.randrange(len(target))]
        elif op < 6:
            target.append(random_value(rng, doc))
        elif target:
            i = rng.randrange(len(target))
            target[i] = _swap_type(rng, doc, target[i])
        return
    keys = list(target)
    if op == 0 and keys:  # drop a key
        del target[rng.choice(keys)]
    elif op == 1:  # add a key
        target[random_key(rng)] = random_value(rng, doc)
    elif op == 2 and keys:  # rename a key (near miss)
        key = rng.choice(keys)
        target[mutate_text(rng, key)] = target.pop(key)
    elif op == 3 and keys:  # another type
        key = rng.choice(keys)
        target[key] = _swap_type(rng, doc, target[key])
    elif op == 4 and keys:  # a raw number
        target[rng.choice(keys)] = doc.raw(rng.choice(NUMBERS))
    elif op == 5 and keys:  # a near miss of a string value
        key = rng.choice(keys)
        if isinstance(target[key], str):
            target[key] = mutate_text(rng, target[key])
        else:
            target[key] = random_value(rng, doc)
    elif op == 6 and keys:  # an empty container
        target[rng.choice(keys)] = rng.choice(([], {}, "", None))
    elif keys:  # any value
        target[rng.choice(keys)] = random_value(rng, doc)


def byte_flips(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randrange(1, 9)):
        if not data:
            break
        i = rng.randrange(len(data))
        roll = rng.randrange(5)
        if roll == 0:
            data[i] ^= 1 << rng.randrange(8)
        elif roll == 1:
            data[i] = rng.randrange(256)
        elif roll == 2:
            del data[i]
        elif roll == 3:
            data[i:i] = bytes([rng.randrange(256)])
        else:
            data[i:i] = rng.choice((b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xff", b"\x00", b",",
                                    b"}", b"]", b'"', b"\\", b"\\u", b"\\ud800", b"NaN", b"1e999999999"))
    return bytes(data)


CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "text/json",
                 "text/plain", "application/xml", "application/problem+json", "", ";", "application/json;;",
                 "application/json\x00", "application/jsön", "*/*"]


def aler_input(rng: random.Random) -> tuple[bytes, str, str]:
    """(body, content type, category) for one fuzz case."""
    roll = rng.random()
    seed = rng.randrange(len(ALER_SEEDS))
    content_type = "application/json" if rng.random() < 0.95 else rng.choice(CONTENT_TYPES)
    if roll < 0.50:
        doc = Doc()
        value = copy_json(ALER_SEEDS[seed])
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5))):
            mutate(rng, value, doc)
        return doc.dumps(value, ensure_ascii=rng.random() < 0.7), content_type, "mutated"
    if roll < 0.58:
        doc = Doc()
        return doc.dumps(random_value(rng, doc)), content_type, "random-json"
    if roll < 0.73:
        return byte_flips(rng, ALER_SEED_BYTES[seed]), content_type, "byte-flips"
    if roll < 0.81:
        body = ALER_SEED_BYTES[seed]
        cut = body[: rng.randrange(len(body))]
        return cut + (rng.choice((b"", b"}", b'"}', b"]}", b"\xff")) if rng.random() < 0.3 else b""), content_type, \
            "truncated"
    if roll < 0.87:
        size = rng.choice((0, 1, 2, 8, 64, 300))
        if rng.random() < 0.5:
            return rng.randbytes(size), content_type, "random-bytes"
        return random_string(rng).encode("utf-8", "surrogatepass")[:size], content_type, "random-bytes"
    if roll < 0.93:
        levels = rng.choice((100, 999, 1000, 2000, 5000, 20_000))
        opener, closer = rng.choice(((b"[", b"]"), (b'{"a":', b"}"), (b'{"contratto":', b"}")))
        closing = closer * (levels if rng.random() < 0.8 else rng.randrange(levels))
        return opener * levels + b"1" + closing, content_type, "deep"
    if roll < 0.97:
        text = ALER_SEED_BYTES[seed].decode()
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig", "cp1252"))
        body = text.replace("canone", "morosità").encode(encoding, "replace")
        return body, content_type, "encodings"
    return ALER_SEED_BYTES[seed], rng.choice(CONTENT_TYPES), "content-type"


# --- checks --------------------------------------------------------------------------------------------------


class Tally:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.accepted = 0
        self.rules: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self.failures: list[str] = []
        self.known: Counter[str] = Counter()
        self.unraisable: Counter[str] = Counter()

    def fail(self, message: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(message)

    def report(self, seconds: float) -> str:
        lines = [f"{self.name}: {self.calls} inputs in {seconds:.1f} s ({seconds / max(self.calls, 1) * 1e6:.0f} us "
                 f"each); accepted {self.accepted}, rejected {sum(self.kinds.values())}"]
        lines.append("  inputs by category: " + ", ".join(f"{k} {v}" for k, v in self.categories.most_common()))
        lines.append("  rejections by kind: " + ", ".join(f"{k} {v}" for k, v in self.kinds.most_common()))
        lines.append("  problems by rule: " + ", ".join(f"{k} {v}" for k, v in self.rules.most_common()))
        if self.known:
            lines.append("  known product issues hit: " + ", ".join(f"{k} {v}" for k, v in self.known.most_common()))
        if self.unraisable:
            lines.append("  unraisable exceptions: " + ", ".join(f"{k} {v}" for k, v in self.unraisable.most_common()))
        return "\n".join(lines)


@contextlib.contextmanager
def counting_unraisables(tally: Tally) -> Iterator[None]:
    """Count what reaches ``sys.unraisablehook`` (an exception nobody could catch) instead of failing the
    first test that happens to collect it."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        tally.unraisable[type(unraisable.exc_value).__name__] += 1

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def check_problems(tally: Tally, case: str, detail: str, problems: list[Any],
                   may_quote: frozenset[str] = frozenset()) -> None:
    """``may_quote``: rules whose message deliberately names the offending value (not checked for echoes)."""
    if not detail:
        tally.fail(f"{case}: empty detail")
    if not problems:
        tally.fail(f"{case}: rejection without problems ({detail})")
    told = [detail]
    for problem in problems:
        tally.rules[problem.rule] += 1
        if problem.rule in may_quote:
            tally.known[f"value quoted by rule {problem.rule}"] += 1
        else:
            told.append(problem.message)
        if not problem.rule or not problem.message:
            tally.fail(f"{case}: problem without rule or message: {problem}")
        if not isinstance(problem.pointer, str) or not (problem.pointer == "" or problem.pointer.startswith("/")):
            tally.fail(f"{case}: bad pointer {problem.pointer!r}")
    text = "\n".join(told).upper()
    for cf in CFS:
        if cf in text:
            tally.fail(f"{case}: the codice fiscale is echoed in {told!r}")


def check_decode(tally: Tally, case: str, body: bytes, content_type: str) -> None:
    tally.calls += 1
    try:
        result = decode(body, content_type)
    except DecodeError as exc:
        tally.kinds[exc.kind] += 1
        if exc.kind not in ("malformed", "contract"):
            tally.fail(f"{case}: unknown kind {exc.kind!r}")
        check_problems(tally, case, exc.detail, exc.problems)
    except Exception as exc:
        tally.fail(f"{case}: unhandled {type(exc).__name__}: {str(exc)[:200]} for {body[:200]!r} ({content_type!r})")
    else:
        tally.accepted += 1
        if not (isinstance(result, list) and len(result) == 1 and isinstance(result[0], Envelope)
                and result[0].message_type == "tenancy.arrears-referral"):
            tally.fail(f"{case}: unexpected result {result!r}")


# --- ALER --------------------------------------------------------------------------------------------------


def test_seed_messages_are_valid() -> None:
    for body in ALER_SEED_BYTES:
        [envelope] = decode(body)
        assert envelope.message_type == "tenancy.arrears-referral"


@pytest.mark.slow  # tens of thousands of inputs: a minute or more on a loaded machine
def test_fuzz_aler_decode_rejects_every_malformed_input_with_a_reason() -> None:
    rng = random.Random(SEED)
    tally = Tally("adapters.aler.decode")
    started = time.perf_counter()
    with counting_unraisables(tally):
        for index in range(ALER_INPUTS):
            body, content_type, category = aler_input(rng)
            tally.categories[category] += 1
            check_decode(tally, f"seed {SEED} case {index} ({category})", body, content_type)
    print("\n" + tally.report(time.perf_counter() - started))
    assert tally.failures == []
    assert not tally.unraisable
    assert tally.calls >= 100_000
    assert tally.calls - tally.accepted > 0.9 * tally.calls  # the inputs really are malformed, mostly
    assert {"malformed", "contract"} <= set(tally.kinds)
    for rule in ("json", "utf-8", "type", "content-type", "number-range", "missing", "extra_forbidden"):
        assert tally.rules[rule] > 0, rule


json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text())
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)


@st.composite
def mutated_seeds(draw: st.DrawFn) -> bytes:
    """A seed message with values replaced at paths hypothesis chooses (and shrinks)."""
    value = copy_json(draw(st.sampled_from(ALER_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(containers(value, [])))
        if isinstance(target, dict):
            key = draw(st.sampled_from(sorted(target)) | st.text(max_size=12)) if target else draw(st.text())
            if draw(st.booleans()) and key in target:
                del target[key]
            else:
                target[key] = draw(json_values)
        elif target:
            target[draw(st.integers(0, len(target) - 1))] = draw(json_values)
    return Doc().dumps(value)


@settings(max_examples=1500, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(
    mutated_seeds(),
    json_values.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.text().map(lambda t: t.encode("utf-8", "surrogatepass")),
), st.sampled_from(CONTENT_TYPES[:3]))
def test_hypothesis_aler_decode_rejects_with_a_reason(body: bytes, content_type: str) -> None:
    tally = Tally("hypothesis")
    check_decode(tally, "hypothesis", body, content_type)
    assert tally.failures == []


# --- FHIR Consent ----------------------------------------------------------------------------------------------

REGISTRY = load_registry()
_START = datetime(2026, 1, 1, tzinfo=UTC)


def _consent_seeds() -> list[tuple[FhirVersion, dict[str, Any]]]:
    guardian = fhir_consent(_TENANTS[3].cf, start=_START, consent_type="explicit", security_labels=("SDV",),
                            purposes=("anti-violence-support",), recipients=("cav",))
    guardian["performer"] = [{"type": "RelatedPerson", "extension": [
        {"url": EXTENSION_BASE + "grantor-role", "valueCode": "support-administrator"},
        {"url": EXTENSION_BASE + "grantor-evidence", "valueString": "Trib. Milano 12/2026"}]}]
    r4 = [
        fhir_consent(_TENANTS[0].cf, start=_START),
        fhir_consent(_TENANTS[1].cf.lower(), decision="deny", status="inactive", start=_START,
                     cf_system="urn:oid:2.16.840.1.113883.2.9.4.3.2"),
        fhir_consent("STP0303080000001", start=_START, cf_system="https://gateway.quartieri.example/fhir/sid/stp-eni",
                     recipients=("fwa", "comune")),
        fhir_consent(omocodic_variant(_TENANTS[2].cf, 2), status="draft", start=_START, recipients=()),
        fhir_consent(_TENANTS[4].cf, start=_START, purposes=("microcredit-assessment", "housing-support"),
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
"""Unhandled exceptions in gateway/consent_fhir.py tolerated by this fuzz (none today: the two it found, an
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
        "gateway/consent_fhir.py")]
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


@pytest.mark.parametrize("number", ["1e999999999", "-1e999999999", "1e1001", "1e-999999999"])
def test_aler_number_with_a_huge_exponent_is_rejected_at_once(number: str) -> None:
    """Regression: ``1e999999999`` became Decimal('1E+999999999') and validating it as an int field (mensilita)
    built a billion-digit integer: minutes of CPU for 11 bytes of input."""
    body = ALER_SEED_BYTES[0].replace(b'"mensilita": ', b'"mensilita": ' + number.encode() + b', "x": ', 1)
    started = time.perf_counter()
    with pytest.raises(DecodeError) as info:
        decode(body)
    assert time.perf_counter() - started < 1.0
    assert [(p.pointer, p.rule) for p in info.value.problems] == [("", "number-range")]
