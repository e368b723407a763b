"""FWA's native messages, as the foundation's system would send them: for the demo, the tests and the
benchmarks (re-exported by :mod:`gateway.simulators`)."""

from __future__ import annotations

from typing import Any

__all__ = ["fwa_outcome"]


def fwa_outcome(referral_id: str, message_id: str, correlation_id: str, esito: str = "approvato",
                amount: str | None = "1500.00") -> dict[str, Any]:
    """FWA's ``esito-segnalazione`` quoting the referral id the gateway minted."""
    message: dict[str, Any] = {
        "id_messaggio": message_id,
        "id_correlazione": correlation_id,
        "tipo_messaggio": "esito-segnalazione",
        "versione": "1.0",
        "id_segnalazione": referral_id,
        "esito": esito,
        "data_decisione": "2026-12-02T11:00:00+01:00",
    }
    if amount is not None:
        message["importo_approvato_euro"] = amount
    return message
