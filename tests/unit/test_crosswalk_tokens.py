"""Crosswalk tokens are a fixed function of the gateway's key (tokens already sent must keep resolving).

The crosswalk keys its HMAC once and copies it per token; the tokens must be those of the plain definition,
``gwt_`` + base-32 of the first 15 bytes of HMAC-SHA-256(SHA-256("crosswalk/v1\\0" + key), recipient \\0 system
\\0 value), whatever was minted before under the same object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

from gateway.identity.crosswalk import Crosswalk


def _defined(key: bytes, recipient: str, system: str, value: str) -> str:
    keyed = hashlib.sha256(b"crosswalk/v1\x00" + key).digest()
    digest = hmac.new(keyed, f"{recipient}\x00{system}\x00{value}".encode(), hashlib.sha256).digest()
    return "gwt_" + base64.b32encode(digest[:15]).decode("ascii").lower()


def test_tokens_are_those_of_the_definition_in_any_order() -> None:
    rng = random.Random(8)
    for _ in range(20):
        key = rng.randbytes(32)
        crosswalk = Crosswalk(key)
        for _ in range(100):
            recipient = rng.choice(["fwa", "aler", "comune", "asst"])
            system = rng.choice(["record-key", "subject", "comune-case", "case_id"])
            value = "".join(rng.choice("abcdefghijk_-0123456789àé") for _ in range(rng.randrange(0, 40)))
            assert crosswalk.token(recipient, system, value) == _defined(key, recipient, system, value)


def test_a_known_token() -> None:
    """Minted by the crosswalk before it kept a keyed HMAC to copy."""
    assert Crosswalk(b"\x00" * 32).token("fwa", "record-key", "sbj_a") == "gwt_5y6bvikn7rsegjrw2ttxlsgh"
    assert Crosswalk(b"a").token("fwa", "subject", "x") != Crosswalk(b"b").token("fwa", "subject", "x")
