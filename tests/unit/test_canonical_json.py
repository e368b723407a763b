"""The audit log's canonical JSON: the orjson fast path writes exactly the bytes of RFC 8785 (``rfc8785``).

Audit records are hashed into the Merkle tree, so a single differing byte between the two serialisers would
make records written by one version unverifiable by another. Generated records cover what audit records hold
(ASCII field names, any Unicode text, integers, nested objects and lists) and what forces the checked path
(floats, integers beyond 2**53, non-ASCII keys, astral-plane keys).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gateway.audit.canonical import CanonicalJSONError, _fast_path_safe, canonical_json, canonical_json_float_free
from gateway.audit.record import AuditRecord, KafkaCoordinates

_SAFE = 2**53 - 1
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_scalars = st.none() | st.booleans() | st.integers(-_SAFE, _SAFE) | _text
_ascii_keys = st.text(st.characters(max_codepoint=127), max_size=8)


def _json(keys: st.SearchStrategy[str], leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
                        max_leaves=20)


@given(_json(_ascii_keys, _scalars))
@settings(max_examples=600, deadline=None)
def test_fast_path_writes_the_bytes_of_rfc8785(value: Any) -> None:
    assert _fast_path_safe(value)
    assert canonical_json(value) == rfc8785.dumps(value)


_awkward = (st.floats(allow_nan=False, allow_infinity=False) | st.integers(_SAFE + 1, 2**53 + 10**6)
            | st.integers(-(2**53 + 10**6), -_SAFE - 1))
_any_keys = st.text(st.characters(exclude_categories=("Cs",)), max_size=4)


@given(_json(_any_keys, _scalars | _awkward))
@settings(max_examples=600, deadline=None)
def test_every_value_gives_the_bytes_of_rfc8785_whichever_path_it_takes(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return  # integers beyond 2**53 etc.: canonical_json refuses them (tested in test_merkle.py)
    assert canonical_json(value) == expected


def test_values_where_orjson_and_rfc8785_differ_take_the_checked_path() -> None:
    assert not _fast_path_safe({"amount": 1.5})
    assert not _fast_path_safe({"big": 2**53})
    assert not _fast_path_safe({"\U0001d11e": 1, "\ue000": 2})  # UTF-16 and code point orders differ
    assert canonical_json({"\U0001d11e": 1, "\ue000": 2}) == rfc8785.dumps({"\U0001d11e": 1, "\ue000": 2})
    assert canonical_json({"x": 1e21}) == rfc8785.dumps({"x": 1e21})


def _annotations_of(model: type[BaseModel]) -> list[Any]:
    found = []
    for info in model.model_fields.values():
        pending = [info.annotation]
        while pending:
            annotation = pending.pop()
            found.append(annotation)
            pending += get_args(annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found += _annotations_of(annotation)
    return found


def test_audit_records_declare_no_float_so_the_float_free_path_applies() -> None:
    """canonical_json_float_free trusts that an audit record's JSON form holds no float: a float field added to
    the model would make it write orjson's number form instead of RFC 8785's."""
    annotations = _annotations_of(AuditRecord)
    assert KafkaCoordinates in annotations  # the walk reaches nested models
    assert float not in annotations


_records = st.builds(
    AuditRecord,
    event_type=st.sampled_from(["decision", "disclosure", "erasure"]), action=_text,
    occurred_at=st.datetimes(timezones=st.just(UTC)), outcome=st.sampled_from(["permit", "deny"]),
    reason=st.none() | _text, purpose=st.none() | _text, instance=_text, subject_ref=st.none() | _text,
    message_ids=st.lists(_text, max_size=3).map(tuple), labels=st.lists(_text, max_size=3).map(tuple),
    kafka=st.none() | st.builds(KafkaCoordinates, topic=_text, partition=st.integers(0, 2**31),
                                 offset=st.integers(0, 2**53 + 5)),
    counts=st.none() | st.dictionaries(_any_keys, st.integers(-_SAFE, _SAFE), max_size=3),
)


@given(_records, st.integers(0, 2**40), st.binary(min_size=32, max_size=32))
@settings(max_examples=400, deadline=None)
def test_float_free_path_writes_the_bytes_of_rfc8785_for_audit_records(record: AuditRecord, index: int,
                                                                     previous: bytes) -> None:
    body = record.for_log(index, previous, datetime.now(UTC))
    try:
        expected = rfc8785.dumps(body)
    except (rfc8785.CanonicalizationError, ValueError):  # an offset beyond 2**53: refused on both paths
        with pytest.raises(CanonicalJSONError):
            canonical_json_float_free(body)
        return
    assert canonical_json_float_free(body) == expected
