"""Helpers shared by the adapter tests: writing JSON documents (with bare values partners may send), editing
them at a path, and listing their leaves."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "leaves", "native_euro", "raw", "with_value"]

_RAW = re.compile(r'"@@raw:([^@"]*)@@"')


def raw(text: str) -> str:
    """A placeholder that :func:`dumps` writes as the bare JSON text ``text`` (a number as a partner may send it)."""
    return f"@@raw:{text}@@"


def dumps(document: Any) -> bytes:
    """JSON bytes of ``document``, with :func:`raw` placeholders written bare; lone surrogates pass through."""
    return _RAW.sub(r"\1", json.dumps(document)).encode("utf-8", "surrogatepass")


def with_value(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with ``value`` at the slash-separated ``path`` (list indexes allowed; ``...``
    deletes the key)."""
    result = copy.deepcopy(document)
    *parents, last = path.split("/")
    target: Any = result
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        if value is ...:
            del target[int(last)]
        else:
            target[int(last)] = value
    elif value is ...:
        del target[last]
    else:
        target[last] = value
    return result


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Slash-separated paths to every non-object value (lists are leaves)."""
    if isinstance(value, dict) and value:
        result: dict[str, Any] = {}
        for key, item in value.items():
            result.update(leaves(item, f"{prefix}/{key}" if prefix else key))
        return result
    return {prefix: value}


def native_euro(text: Any) -> Decimal:
    """The euro amount a partner wrote (a string, or a :func:`raw` bare number), read exactly."""
    match = _RAW.fullmatch(f'"{text}"')
    return Decimal(match.group(1) if match else str(text).strip())
