"""FWA's golden examples: its outcomes of a microcredit referral, and invalid ones with the problems the gateway
reports (published under ``contracts/examples/fwa/``)."""

from __future__ import annotations

from typing import Any

from adapters._golden import CF_ALER
from adapters.descriptor import GoldenExamples, Mutation
from adapters.fwa.simulator import fwa_outcome

__all__ = ["EXAMPLES", "INVALID", "valid"]


def valid() -> dict[str, dict[str, Any]]:
    """An approved and a refused outcome, by name."""
    return {
        "esito-approvato": fwa_outcome("REF-0001", "FWA-M-0001", "ALER-K-0001"),
        "esito-respinto": fwa_outcome("REF-0002", "FWA-M-0002", "ALER-K-0002", esito="respinto", amount=None),
    }


INVALID: dict[str, tuple[Mutation, list[tuple[str, str]]]] = {
    "outcome-unknown-code": (("esito-approvato", "esito", "forse"), [("/esito", "literal_error")]),
    "outcome-missing-field": (("esito-approvato", "id_segnalazione", ...), [("/id_segnalazione", "missing")]),
    "outcome-wrong-type": (("esito-approvato", "importo_approvato_euro", [1500]),
                           [("/importo_approvato_euro", "decimal_type")]),
    "outcome-unknown-field": (("esito-respinto", "codice_fiscale", CF_ALER),
                              [("/codice_fiscale", "extra_forbidden")]),
    "missing-tipo-messaggio": (("esito-approvato", "tipo_messaggio", ...),
                               [("/tipo_messaggio", "union_tag_not_found")]),
    "malformed-json": (b'{"tipo_messaggio": "esito-segnalazione"}}', [("", "json")]),
}
"""Invalid example name -> (how it is made from a valid one, the problems it must produce)."""

EXAMPLES = GoldenExamples(valid=valid, invalid=INVALID)
