"""What the fuzz tests are made of: malformed inputs from a seeded :class:`random.Random` (fast and reproducible:
a failure names the seed and case number that rebuild the input), and the tally that checks every answer.

Inputs are valid messages with keys dropped, added and renamed, values swapped for other JSON types, unicode and
control characters, lone surrogates, huge and oddly written numbers, 2,000-level nesting and empty containers;
random bytes; truncated bodies; byte flips of valid encodings; other text encodings and content types
(:func:`json_input`). A refusal must have a non-empty ``detail`` and at least one problem whose ``rule`` and
``message`` are non-empty and whose ``pointer`` is ``""`` or a JSON pointer, and no codice fiscale of
:data:`CFS` in what the sender is told (:func:`check_problems`).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from adapters._golden import CFS as GOLDEN_CFS
from gateway.identity.synthetic import generate_tenants
from schemas.codelists import load_codelist

__all__ = [
    "CFS", "CONTENT_TYPES", "NUMBERS", "TENANTS", "Doc", "Tally", "byte_flips", "check_problems", "containers",
    "copy_json", "counting_unraisables", "deep_value", "json_input", "mutate", "random_key", "random_string",
    "random_value", "run",
]

TENANTS = [t for t in generate_tenants("S", seed=31, limit=200) if t.arrears_cents > 0][:8]
"""Synthetic tenants the seeds of the consent fuzz are about."""
CFS = sorted(set(GOLDEN_CFS) | {t.cf for t in TENANTS})
"""Every codice fiscale a fuzz input may carry: none may be echoed back."""

# --- serialisation with raw JSON text ------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r'"@@raw:(\d+)@@"')


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

        return _PLACEHOLDER.sub(lambda match: self.raws[int(match.group(1))], text).encode("utf-8", "surrogatepass")




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




def json_input(rng: random.Random, seeds: Sequence[Any], usual_content_type: str,
               other_content_types: Sequence[str] = ()) -> tuple[bytes, str, str]:
    """(body, content type, category) for one fuzz case made from ``seeds`` (valid JSON messages)."""
    seed = rng.randrange(len(seeds))
    seed_bytes = Doc().dumps(seeds[seed])
    content_types = [*CONTENT_TYPES, *other_content_types]
    content_type = usual_content_type if rng.random() < 0.95 else rng.choice(content_types)
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
        return byte_flips(rng, seed_bytes), content_type, "byte-flips"
    if roll < 0.81:
        cut = seed_bytes[: rng.randrange(len(seed_bytes))]
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
        text = seed_bytes.decode().replace("a", "à", 3)
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig", "cp1252"))
        return text.encode(encoding, "replace"), content_type, "encodings"
    return seed_bytes, rng.choice(content_types), "content-type"


def run(tally: Tally, seed: int, inputs: int, make: Callable[[random.Random], tuple[bytes, str, str]],
        check: Callable[[str, bytes, str], None], *, rejected_share: float, rules: Iterable[str]) -> None:
    """Feed ``inputs`` cases made by ``make`` from ``random.Random(seed)`` to ``check`` (case name, body, content
    type), print the tally, and assert that nothing escaped: no failure and nothing unraisable, at least
    ``rejected_share`` of the inputs refused (they really are malformed, mostly), both kinds of refusal seen and
    every one of ``rules`` hit."""
    rng = random.Random(seed)
    started = time.perf_counter()
    with counting_unraisables(tally):
        for index in range(inputs):
            body, content_type, category = make(rng)
            tally.categories[category] += 1
            check(f"seed {seed} case {index} ({category})", body, content_type)
    print("\n" + tally.report(time.perf_counter() - started))
    assert tally.failures == []
    assert not tally.unraisable
    assert tally.calls >= inputs
    assert tally.calls - tally.accepted > rejected_share * tally.calls
    assert {"malformed", "contract"} <= set(tally.kinds)
    for rule in rules:
        assert tally.rules[rule] > 0, rule
