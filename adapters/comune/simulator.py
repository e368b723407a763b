"""The Comune's native messages, as its social-services system would send them: for the demo, the tests and
the benchmarks (re-exported by :mod:`gateway.simulators`)."""

from __future__ import annotations

from typing import Any

__all__ = ["comune_case_event", "comune_emergency"]


def comune_case_event(cf: str, case_id: str, message_id: str, correlation_id: str, *, evento: str = "apertura",
                      stato: str = "in-charge") -> dict[str, Any]:
    """The Comune's ``evento-caso``: a social case opened or changed for a person."""
    return {
        "id_messaggio": message_id,
        "id_correlazione": correlation_id,
        "tipo_messaggio": "evento-caso",
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "social-case-management",
        "destinatari": ["aler"],
        "persona": {"codice_fiscale": cf},
        "caso": {"id_caso": case_id, "evento": evento, "stato": stato, "municipio": 7, "area": "housing",
                 "misure": ["Misura 1"], "grado_disagio": 3, "livello_mandato_tribunale": "assessment-mandate"},
    }


def comune_emergency(cf: str, message_id: str) -> dict[str, Any]:
    """The Comune's ``evento-emergenza`` (F10): a fire in a building, for the emergency social service."""
    return {
        "id_messaggio": message_id,
        "id_correlazione": message_id,
        "tipo_messaggio": "evento-emergenza",
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "emergency-social",
        "destinatari": ["pis"],
        "persona": {"codice_fiscale": cf},
        "evento": {"tipo": "fire", "accaduto_il": "2026-11-20T03:15:00+01:00"},
        "luogo": {"quartiere": "san-siro", "municipio": 7, "id_edificio": "ALER-B-0042"},
        "nucleo": {"persone": 4, "minori": 2, "over_65": 1, "con_disabilita": 0},
    }
