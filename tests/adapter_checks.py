"""What the adapter tests check of every decoder's answer: exactly one envelope, or a refusal the sender can act
on (a detail, and problems each with a rule, a message and a JSON pointer), never echoing what must not be."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem
from tests.helpers import dumps

__all__ = ["decoded_one", "header_of", "refusal"]

Decode = Callable[[bytes, str], list[Envelope]]


def decoded_one(decode: Decode, document: Any, content_type: str) -> Envelope:
    """The one envelope ``decode`` makes of ``document`` (a JSON value, or bytes sent as they are)."""
    envelopes = decode(document if isinstance(document, bytes) else dumps(document), content_type)
    assert len(envelopes) == 1
    assert isinstance(envelopes[0], Envelope)
    return envelopes[0]


def refusal(decode: Decode, body: Any, content_type: str, *, never: Iterable[str] = ()) -> DecodeError:
    """The refusal ``decode`` answers ``body`` with (bytes, or a JSON value), checked to be one a sender can act
    on; no problem message contains any of ``never``."""
    with pytest.raises(DecodeError) as info:
        decode(body if isinstance(body, bytes) else dumps(body), content_type)
    error = info.value
    assert error.detail
    assert error.problems
    for problem in error.problems:
        assert isinstance(problem, FieldProblem)
        assert problem.rule and problem.message
        assert problem.pointer == "" or problem.pointer.startswith("/")
        assert not [text for text in never if text in problem.message]
    return error


def header_of(envelope: Envelope) -> dict[str, Any]:
    """Everything of ``envelope`` but its payload, as plain values: what a test compares with one literal."""
    return envelope.model_dump(exclude={"payload"})
