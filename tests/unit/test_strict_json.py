"""The strict JSON check's quick paths give the answers of the full walk, and its one-parse reading the answers
of the check followed by the adapter's own parse (gateway.strict_json)."""

from __future__ import annotations

import inspect
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from adapters.descriptor import Decoder, PartnerDescriptor
from gateway.partners import PARTNERS
from gateway.routing import DECODERS
from gateway.strict_json import (
    check_strict_json,
    checked_document,
    duplicate_member,
    looks_like_json,
    nesting_exceeds,
    parse_json_text,
    strictly_read,
)
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from tests.fuzz.inputs import Doc, json_input


@pytest.mark.parametrize(("raw", "pointer"), [
    (b'{"a": 1, "b": {"c": 2}}', None),
    (b'{"a": 1, "a": 2}', "/a"),
    (b'{"a": [{"x": 1}, {"x": 1, "y": 2, "x": 3}]}', "/a/1/x"),
    (b'{"a~b/c": {"k": 1, "k": 2}}', "/a~0b~1c/k"),
    (b'{"same": {"k": 1}, "other": {"k": 1}}', None),  # one name in two objects is no repeat
    (b'{not json', None),  # left to the decoder
    (b'{"a": {"k": 1, "k": 2}, "b": [1 2]}', None),  # a repeat before a syntax error: the decoder reports the error
])
def test_a_repeated_member_is_found_with_its_pointer(raw: bytes, pointer: str | None) -> None:
    assert duplicate_member(raw) == pointer


def test_nesting_is_measured_only_when_the_document_opens_enough_brackets() -> None:
    deep = b"[" * 65 + b"]" * 65
    assert nesting_exceeds(deep, 64)
    assert not nesting_exceeds(b"[" * 64 + b"]" * 64, 64)
    # many openers side by side, none deep: the full scan runs and finds nothing
    wide = json.dumps([[i] for i in range(200)]).encode()
    assert not nesting_exceeds(wide, 64)
    # brackets inside strings are not structure
    assert not nesting_exceeds(json.dumps({"s": "[" * 100}).encode(), 64)


@pytest.mark.parametrize(("raw", "pointer"), [(b"[" * 70 + b"]" * 70, ""), (b'{"cf": "AAA", "cf": "BBB"}', "/cf")])
def test_check_refuses_both_with_a_malformed_error_naming_the_place_not_the_value(raw: bytes, pointer: str) -> None:
    with pytest.raises(DecodeError) as refused:
        check_strict_json(raw)
    assert refused.value.kind == "malformed"
    [problem] = [p.as_dict() for p in refused.value.problems]
    assert problem["pointer"] == pointer
    assert "AAA" not in json.dumps(problem) and "BBB" not in json.dumps(problem)


# --- one parse: the check hands its document to the adapter ------------------------------------------------------

def test_the_checked_document_is_the_one_the_adapter_would_parse_and_is_handed_out_once() -> None:
    raw = b'{"amount": 12.50, "big": 1e3, "n": 7, "list": [1.0, {"deep": [true, null, "x"]}]}'
    with strictly_read(raw):
        assert checked_document(bytes(bytearray(raw))) is None  # equal bytes, another object: not this message
        document = checked_document(raw)
        assert checked_document(raw) is None  # a second reader parses for itself
    assert document == parse_json_text(raw.decode("utf-8"))
    assert [type(document["amount"]), type(document["big"]), type(document["n"])] == [Decimal, Decimal, int]
    assert str(document["amount"]) == "12.50"
    assert checked_document(raw) is None  # nothing outlives the block


@pytest.mark.parametrize("raw", [
    b'{"a": 1, "a": 2}', b"[" * 70 + b"]" * 70, b'{"a": NaN}', b'{"a": 1e99999}', b'{"a": 1', b'{"a": "\xff"}',
    b'{"a": {"k": 1, "k": 2}, "b": [1 2]}', b"[1, 2]", b'{"a": 1} x',
])
def test_strictly_read_refuses_what_the_check_refuses_and_keeps_nothing_it_could_not_read(raw: bytes) -> None:
    try:
        check_strict_json(raw)
    except DecodeError as refused:
        with pytest.raises(DecodeError) as also_refused, strictly_read(raw):
            pass
        assert also_refused.value.kind == refused.kind and also_refused.value.detail == refused.detail
        assert also_refused.value.problems == refused.problems
        return
    with strictly_read(raw):
        document = checked_document(raw)
    if raw.startswith(b"["):
        assert document == [1, 2]
    else:
        assert document is None  # unreadable in one go: the decoder reads the bytes again and says why


def _outcome(decoder: Decoder, body: bytes, content_type: str) -> tuple[Any, ...]:
    try:
        envelopes = decoder(body, content_type)
    except DecodeError as exc:
        return ("refused", exc.kind, exc.detail, [p.as_dict() for p in exc.problems])
    except Exception as exc:  # compared, not hidden: both paths must fail the same way
        return ("raised", type(exc).__name__, str(exc))
    return ("decoded", envelopes, [e.model_dump() for e in envelopes], [e.model_dump_json() for e in envelopes])


def _two_parses(decoder: Decoder) -> Decoder:
    """The decoder as it was before the one-parse reading: the strict check alone, then the adapter parses."""
    def decode(body: bytes, content_type: str) -> list[Envelope]:
        if looks_like_json(body):
            check_strict_json(body)
        return decoder(body, content_type)
    return decode


def _objects(value: Any) -> list[dict[str, Any]]:
    """Every JSON object in ``value``, outermost first."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _with_repeated_members(document: dict[str, Any]) -> list[bytes]:
    """``document`` once per object in it and member of that object, the member repeated first with another
    value and then with its own (the second occurrence is the one a lenient parser keeps)."""
    variants = []
    for index in range(len(_objects(document))):
        for name in list(_objects(document)[index]):
            for other in ("x", _objects(document)[index][name]):
                copy = json.loads(json.dumps(document))
                target = _objects(copy)[index]
                members = dict(target)
                target.clear()
                target["@@repeat@@"] = True
                text = json.dumps(copy)
                inner = json.dumps(members)[1:]
                repeated = "{" + json.dumps(name) + ": " + json.dumps(other) + (", " + inner if members else "}")
                variants.append(text.replace('{"@@repeat@@": true}', repeated, 1).encode())
    return variants


SENDERS = [p for p in PARTNERS if p.decode is not None and p.examples is not None]


@pytest.mark.parametrize("partner", SENDERS, ids=lambda p: p.organisation)
def test_one_parse_decodes_and_refuses_exactly_as_the_check_and_a_second_parse_did(
        partner: PartnerDescriptor) -> None:
    """Over each partner's golden examples and 3,000 fuzz inputs made from them (mutated, truncated, byte-flipped,
    deep, repeated members, other encodings and content types), the decoder behind the one-parse strict read
    returns the same envelopes, or refuses with the same kind, detail and problems, as the strict check followed
    by the adapter's own parse; so do the examples with a member of any of their objects repeated."""
    assert partner.examples is not None
    seeds = [json.loads(json.dumps(document)) for document in partner.examples.valid().values()]
    one_parse = DECODERS[partner.organisation]
    two_parses = _two_parses(inspect.unwrap(one_parse))
    cases = [(Doc().dumps(document), partner.content_type) for document in seeds]
    cases += [(Doc().dumps(document, ensure_ascii=False), partner.content_type) for document in seeds]
    repeats = [(body, partner.content_type) for document in seeds for body in _with_repeated_members(document)]
    cases += repeats
    rng = random.Random(20261206)
    for _ in range(3000):
        body, content_type, _category = json_input(rng, seeds, partner.content_type)
        cases.append((body, content_type))
    for body, content_type in cases:
        now = _outcome(one_parse, body, content_type)
        before = _outcome(two_parses, body, content_type)
        assert now == before, body[:300]
    assert sum(_outcome(one_parse, body, ct)[0] == "decoded" for body, ct in cases) >= len(seeds)
    assert all(_outcome(one_parse, body, ct)[3][0]["rule"] == "duplicate-key" for body, ct in repeats)
