"""Strict reading of JSON that partners send: duplicate member names and deep nesting are refused.

RFC 8259 only says member names SHOULD be unique, and parsers then keep the last one: a message with two
``"codice_fiscale"`` members means one thing to a partner's validator and another to the gateway. Deep
nesting costs memory and recursion before any contract is checked. Every JSON entry point (HTTP bodies at
the edge, :mod:`gateway.api.edge`; Kafka records and the contract kit through
:data:`gateway.routing.DECODERS`) refuses both, naming the place by JSON pointer and never the value.

The module also holds how a partner's JSON is read once it passes (:func:`parse_json_text`: numbers with a
fraction become :class:`~decimal.Decimal`, exponents are bounded, ``NaN`` and ``Infinity`` are refused), so that
the check and the adapter's reading can be one parse: :func:`strictly_read` checks a message and keeps the
document it parsed for the adapter, which takes it with :func:`checked_document` instead of parsing the same
bytes again (``adapters._json.load_json_object`` does).
"""

from __future__ import annotations

import json
import re
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, Final

from schemas.errors import DecodeError, FieldProblem

__all__ = [
    "DEFAULT_MAX_DEPTH", "MAX_EXPONENT", "NumberOutOfRange", "check_strict_json", "checked_document",
    "duplicate_member", "looks_like_json", "nesting_exceeds", "parse_json_text", "strictly_read",
]

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


def _refuse_deep_nesting(raw: bytes, max_depth: int) -> None:
    if nesting_exceeds(raw, max_depth):
        raise DecodeError("malformed", f"JSON nests deeper than {max_depth} levels",
                          [FieldProblem("", "max-depth", f"nest arrays and objects at most {max_depth} deep")])


def _refuse_repeated_member(raw: bytes) -> None:
    pointer = duplicate_member(raw)
    if pointer is not None:
        raise DecodeError("malformed", "a JSON object repeats a member name",
                          [FieldProblem(pointer, "duplicate-key",
                                        "each member name may appear once per object; remove the repeated one")])


def check_strict_json(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise :class:`DecodeError` (``malformed``) when ``raw`` nests deeper than ``max_depth`` or repeats a
    member name; other JSON errors are left to the decoder."""
    _refuse_deep_nesting(raw, max_depth)
    _refuse_repeated_member(raw)


MAX_EXPONENT: Final = 1000
"""Largest decimal exponent (either sign) a JSON number may have: ``1e999999999`` is 11 bytes, but turning it
into an integer for an int field costs minutes of CPU. No partner field needs more than a few digits."""


class NumberOutOfRange(ValueError):
    """A JSON number's exponent lies outside -:data:`MAX_EXPONENT`..:data:`MAX_EXPONENT`."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _parse_number(text: str) -> Decimal:
    value = Decimal(text)
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise NumberOutOfRange(text)
    return value


def parse_json_text(text: str) -> Any:
    """The JSON value of ``text`` as every partner message is read: a number with a fraction or an exponent
    becomes a :class:`~decimal.Decimal`; raises :class:`NumberOutOfRange`, :class:`json.JSONDecodeError`
    (also for ``NaN`` and ``Infinity``), another :class:`ValueError` or :class:`RecursionError`. Repeated member
    names are not looked at here: :func:`check_strict_json` refuses them."""
    return json.loads(text, parse_float=_parse_number, parse_constant=_reject_constant)


_CHECKING_DECODER: Final = json.JSONDecoder(object_pairs_hook=_unique_members, parse_float=_parse_number,
                                            parse_constant=_reject_constant)
""":func:`parse_json_text` that also refuses a repeated member name, built once as the json module keeps its own
default decoder (``json.loads`` with arguments builds a decoder and its scanner per call: 1.5 us a message)."""

_CHECKED: Final[ContextVar[tuple[bytes, dict[str, Any] | list[Any]] | None]] = ContextVar(
    "strict_json_checked", default=None)
"""The message :func:`strictly_read` is checking (the very bytes object) and the document it parsed from it."""


def _read_checked(raw: bytes, max_depth: int) -> dict[str, Any] | list[Any] | None:
    """:func:`check_strict_json` of ``raw`` that also returns the document, parsed as :func:`parse_json_text`
    would, when it is an object or an array; None when the document is anything else or is not read in one go.

    The usual message costs one parse: the repeat of a member name is detected while each object is built.
    Anything that stops that parse (a repeated name, a syntax error, bytes that are not UTF-8, a number out of
    range, ``NaN``) leads to the separate check of :func:`check_strict_json`, so the check refuses exactly what
    it refuses alone, and leaves the rest to the decoder, which reads the bytes again and says what is wrong."""
    _refuse_deep_nesting(raw, max_depth)
    try:
        document = _CHECKING_DECODER.decode(raw.decode("utf-8"))
    except (_Repeated, ValueError, RecursionError):
        _refuse_repeated_member(raw)
        return None
    return document if isinstance(document, dict | list) else None


class _Keeping(AbstractContextManager[None]):
    """Within the block, :func:`checked_document` hands out ``document`` for ``raw``."""

    __slots__ = ("_document", "_raw", "_token")

    def __init__(self, raw: bytes, document: dict[str, Any] | list[Any]) -> None:
        self._raw, self._document = raw, document

    def __enter__(self) -> None:
        self._token = _CHECKED.set((self._raw, self._document))

    def __exit__(self, *exc_info: object) -> None:
        _CHECKED.reset(self._token)


_NOTHING_KEPT: Final = nullcontext()


def strictly_read(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> AbstractContextManager[None]:
    """Check ``raw`` as :func:`check_strict_json` does (raising the same :class:`DecodeError`) and return a context
    in which :func:`checked_document` hands out the document the check parsed: the decoder running in it takes
    that document instead of parsing the same bytes a second time (``with strictly_read(raw): decode(raw)``)."""
    document = _read_checked(raw, max_depth)
    return _NOTHING_KEPT if document is None else _Keeping(raw, document)


def checked_document(raw: bytes) -> dict[str, Any] | list[Any] | None:
    """The document :func:`strictly_read` parsed from this very ``raw`` (the same bytes object), handed out once,
    exactly as :func:`parse_json_text` reads the same bytes decoded as UTF-8; None when there is none, and the
    caller parses ``raw`` itself."""
    checked = _CHECKED.get()
    if checked is None or checked[0] is not raw:
        return None
    _CHECKED.set(None)  # once: a second reader gets its own document, never one the first may have changed
    return checked[1]
