"""The strict JSON check's quick paths give the answers of the full walk (gateway.strict_json)."""

from __future__ import annotations

import json

import pytest

from gateway.strict_json import check_strict_json, duplicate_member, nesting_exceeds
from schemas.errors import DecodeError


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
