"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme) for audit records.

The bytes returned here are what the audit log hashes into its Merkle tree, so the same record must always
give the same bytes, on any machine and in any Python version: keys sorted by UTF-16 code units, no
insignificant whitespace, numbers in ECMAScript form, strings minimally escaped. Serialisation is done by
``orjson`` with sorted keys wherever its output is provably the same bytes as RFC 8785's, and by the
``rfc8785`` package otherwise. The two agree on every value made only of ``None``, booleans, strings, integers
within +/-(2**53 - 1), lists, tuples and dicts whose keys are ASCII: strings are escaped alike (both write
non-ASCII characters as UTF-8 and control characters as ``\\uXXXX`` or their short escape) and ASCII keys sort the
same by code point as by UTF-16 code unit. They differ for floats (number formatting), integers beyond 2**53
and some orderings of non-ASCII keys, so any value holding one of those takes the ``rfc8785`` path, which
first checks the value so that anything JSON cannot carry exactly is refused with an error that names where
it is (``$.obligations[2]``), instead of being silently coerced. Audit records are almost always on the fast
path (about 85 times faster); ``tests/unit/test_canonical_json.py`` compares both on generated records.

Error messages name the location and the type, never the value: audit records hold pseudonyms and codes,
and an error message may end up in a log line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeAlias

import orjson
import rfc8785

__all__ = ["CanonicalJSONError", "JSONValue", "canonical_json", "canonical_json_float_free"]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
"""A value that JSON carries exactly, as :func:`canonical_json` passes it to the serialiser."""

_MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer an IEEE 754 double holds exactly; JSON numbers beyond it are not portable."""


class CanonicalJSONError(ValueError):
    """A value cannot be written as RFC 8785 canonical JSON; the message says where and why."""


def canonical_json(obj: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 JSON encoding of ``obj``.

    Accepts ``None``, ``bool``, ``int`` within +/-(2**53 - 1), finite ``float``, ``str``, lists and tuples,
    and mappings with ``str`` keys. Raises :class:`CanonicalJSONError` for NaN or infinite floats, integers
    outside the exact range (send them as strings), non-string keys, strings that are not valid Unicode
    (lone surrogates), and any other type (convert datetimes, UUIDs, enums of non-JSON values, bytes and
    Decimals to strings first).
    """
    if _fast_path_safe(obj):
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate: the checked path names where it is
            pass
    value = _checked(obj, "$")
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - _checked refuses these first
        raise CanonicalJSONError(str(exc)) from exc


def canonical_json_float_free(obj: object) -> bytes:
    """:func:`canonical_json` of a value that cannot hold a float, such as an audit record's JSON form (its
    model declares no float field, ``tests/unit/test_canonical_json.py`` pins that): no walk over the value,
    orjson alone decides. It refuses integers beyond 53 bits (``OPT_STRICT_INTEGER``), non-string keys and lone
    surrogates, and output that is all ASCII has ASCII keys, which sort alike by code point and by UTF-16 code
    unit; anything else goes through :func:`canonical_json`, which also gives the error a caller can act on."""
    try:
        data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        return canonical_json(obj)
    return data if data.isascii() else canonical_json(obj)


def _fast_path_safe(value: object) -> bool:
    """True if ``orjson`` with sorted keys writes ``value`` exactly as RFC 8785 does (see the module docstring).
    Exact types only: a subclass (an enum, a custom mapping) takes the checked path. A loop, not recursion:
    this runs for every audit record written."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER:  # type: ignore[operator]
                return False
        elif kind is dict:
            for key in item:  # type: ignore[attr-defined]
                if type(key) is not str or not key.isascii():
                    return False
            pending.extend(item.values())  # type: ignore[attr-defined]
        elif kind is list or kind is tuple:
            pending.extend(item)  # type: ignore[arg-type]
        else:
            return False
    return True


def _checked(value: object, path: str) -> JSONValue:
    """Return ``value`` with mappings as dicts and sequences as lists, raising on anything not JSON."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        _require_unicode(value, f"{path}: string")
        return value
    if isinstance(value, int):
        if not -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            raise CanonicalJSONError(
                f"{path}: integer outside +/-(2**53 - 1) cannot be represented exactly in JSON; encode it as a string"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalJSONError(f"{path}: NaN and infinite numbers are not allowed in JSON (RFC 8785)")
        return value
    if isinstance(value, Mapping):
        checked: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"{path}: object key of type {type(key).__name__} is not a string")
            _require_unicode(key, f"{path}: object key")
            checked[key] = _checked(item, _child_path(path, key))
        return checked
    if isinstance(value, list | tuple):
        return [_checked(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise CanonicalJSONError(
        f"{path}: {type(value).__name__} is not a JSON type; convert it first (for example a datetime to an "
        "ISO 8601 string)"
    )


def _require_unicode(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError(f"{what} contains a lone surrogate, not valid Unicode") from None


def _child_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{path}["{escaped}"]'
