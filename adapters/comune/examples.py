"""The Comune's golden examples: its case events and an emergency event, and invalid ones with the problems the
gateway reports (published under ``contracts/examples/comune/``)."""

from __future__ import annotations

from typing import Any

from adapters._golden import CF_COMUNE, wrong_check_character
from adapters.comune.simulator import comune_case_event, comune_emergency
from adapters.descriptor import GoldenExamples, Mutation

__all__ = ["EXAMPLES", "INVALID", "valid"]


def valid() -> dict[str, dict[str, Any]]:
    """Valid case events (opening and closing) and an emergency event, by name."""
    return {
        "evento-caso": comune_case_event(CF_COMUNE, "COM-CASO-0001", "COM-M-0001", "COM-K-0001"),
        "evento-caso-chiusura": comune_case_event(CF_COMUNE, "COM-CASO-0001", "COM-M-0002", "COM-K-0001",
                                                  evento="chiusura", stato="closed"),
        "evento-emergenza": comune_emergency(CF_COMUNE, "COM-M-0003"),
    }


INVALID: dict[str, tuple[Mutation, list[tuple[str, str]]]] = {
    "case-unknown-field": (("evento-caso", "persona/nome", "Mario"), [("/persona/nome", "extra_forbidden")]),
    "case-bad-check-character": (("evento-caso", "persona/codice_fiscale", wrong_check_character(CF_COMUNE)),
                                 [("/persona/codice_fiscale", "value_error")]),
    "case-missing-field": (("evento-caso", "caso/id_caso", ...), [("/caso/id_caso", "missing")]),
    "case-wrong-type": (("evento-caso", "caso/municipio", "sette"), [("/caso/municipio", "int_type")]),
    "case-unknown-code": (("evento-caso", "caso/area", "astrologia"), [("/caso/area", "value_error")]),
    "emergency-unknown-event": (("evento-emergenza", "evento/tipo", "terremoto"),
                                [("/evento/tipo", "value_error")]),
    "unknown-tipo-messaggio": (("evento-caso", "tipo_messaggio", "evento-casa"),
                               [("/tipo_messaggio", "union_tag_invalid")]),
    "malformed-json": (b"\xff\xfe{}", [("", "utf-8")]),
}
"""Invalid example name -> (how it is made from a valid one, the problems it must produce)."""

EXAMPLES = GoldenExamples(valid=valid, invalid=INVALID)
