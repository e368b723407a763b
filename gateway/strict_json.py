"""Strict reading of JSON that partners send: duplicate member names and deep nesting are refused.

RFC 8259 only says member names SHOULD be unique, and parsers then keep the last one: a message with two
``"codice_fiscale"`` members means one thing to a partner's validator and another to the gateway. Deep
nesting costs memory and recursion before any contract is checked. Every JSON entry point (HTTP bodies at
the edge, :mod:`gateway.api.edge`; Kafka records and the contract kit through
:data:`gateway.routing.DECODERS`) refuses both, naming the place by JSON pointer and never the value.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from schemas.errors import DecodeError, FieldProblem

__all__ = ["DEFAULT_MAX_DEPTH", "check_strict_json", "duplicate_member", "looks_like_json", "nesting_exceeds"]

DEFAULT_MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects accepted (the setting ``GATEWAY_MAX_JSON_DEPTH``); FHIR resources,
the deepest documents partners send, stay well under 20."""

_STRUCTURE: Final = re.compile(rb'[\[\]{}"\\]')
_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")


def looks_like_json(raw: bytes) -> bool:
    """Whether ``raw`` starts (after white space) like a JSON object or array."""
    return raw.lstrip()[:1] in (b"{", b"[")


def nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``raw`` nest deeper than ``limit``, found without parsing (strings and their
    escapes are skipped), so a hostile document costs one regular-expression scan."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # cannot nest deeper than it opens (two C scans instead of a scan in Python)
    depth = 0
    in_string = False
    escaped = -1
    for match in _STRUCTURE.finditer(raw):
        at = match.start()
        if at == escaped:
            continue
        char = raw[at]
        if in_string:
            if char == _BACKSLASH:
                escaped = at + 1
            elif char == _QUOTE:
                in_string = False
        elif char == _QUOTE:
            in_string = True
        elif char in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif char in _CLOSE:
            depth -= 1
    return False


class _Members(list[tuple[str, Any]]):
    """An object's members in document order, duplicates kept."""


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


class _Repeated(Exception):
    """An object repeats a member name (where is found afterwards, on the slow path)."""


def _unique_members(members: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(members)
    if len(found) != len(members):
        raise _Repeated
    return found


def duplicate_member(raw: bytes) -> str | None:
    """JSON pointer of a member whose name repeats an earlier one in the same object, or None (also when
    ``raw`` is not JSON at all: the decoder reports that with its own words)."""
    try:  # the common case, no repeated name, costs one parse with a C-level check per object
        json.loads(raw, object_pairs_hook=_unique_members)
        return None
    except _Repeated:
        pass
    except (ValueError, RecursionError):
        return None
    try:  # only to say where; an object repeating a name may come before a syntax error further on
        document = json.loads(raw, object_pairs_hook=_Members)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, _Members):
            seen: set[str] = set()
            for name, value in node:
                at = f"{pointer}/{_escape(name)}"
                if name in seen:
                    return at
                seen.add(name)
                stack.append((value, at))
        elif isinstance(node, list):
            stack.extend((value, f"{pointer}/{index}") for index, value in enumerate(node))
    return None


def check_strict_json(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise :class:`DecodeError` (``malformed``) when ``raw`` nests deeper than ``max_depth`` or repeats a
    member name; other JSON errors are left to the decoder."""
    if nesting_exceeds(raw, max_depth):
        raise DecodeError("malformed", f"JSON nests deeper than {max_depth} levels",
                          [FieldProblem("", "max-depth", f"nest arrays and objects at most {max_depth} deep")])
    pointer = duplicate_member(raw)
    if pointer is not None:
        raise DecodeError("malformed", "a JSON object repeats a member name",
                          [FieldProblem(pointer, "duplicate-key",
                                        "each member name may appear once per object; remove the repeated one")])
