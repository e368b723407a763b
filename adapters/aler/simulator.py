"""ALER's native messages built from synthetic tenants, as ALER's tenancy system would send them: for the demo,
the tests and the benchmarks (re-exported by :mod:`gateway.simulators`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.identity.synthetic import SyntheticTenant

__all__ = ["aler_arrears_message"]

_MUNICIPIO = {"san-siro": 7, "gratosoglio": 5, "molise-calvairate": 4, "mazzini": 5, "lorenteggio": 6,
              "salomone": 4, "other-milano": 9, "other-lombardia": 1}
_HOUSEHOLD_SIZE = {"couple-several-minors": 5, "single-mother-minors": 3, "single-adult": 1,
                   "mother-newly-adult-child": 2, "adult-with-over-65": 2, "couple-minors-over-65": 5,
                   "elderly-single": 1}


def _euro(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def aler_arrears_message(tenant: SyntheticTenant, message_id: str, *, purpose: str | None = "microcredit-assessment",
                         recipients: tuple[str, ...] = ("fwa",), occurred_at: datetime | None = None,
                         isee_value_cents: int | None = 540_000) -> dict[str, Any]:
    """ALER's ``segnalazione-morosita`` for a synthetic tenant, as ALER's system would send it."""
    message: dict[str, Any] = {
        "id_messaggio": message_id,
        "id_correlazione": f"corr-{message_id}",
        "tipo_messaggio": "segnalazione-morosita",
        "versione": "1.0",
        "data_evento": (occurred_at or datetime.now(UTC)).isoformat(),
        "destinatari": list(recipients),
        "contratto": {
            "id_contratto": tenant.contract_id, "tipo": "SAP", "id_unita": tenant.unit_id,
            "quartiere": tenant.quartiere, "municipio": _MUNICIPIO.get(tenant.quartiere, 1),
            "fascia_canone": tenant.rent_band,
        },
        "intestatario": {
            "codice_fiscale": tenant.cf, "residente_citta_metropolitana": True, "lavora_citta_metropolitana": False,
        },
        "nucleo": {"tipologia": tenant.household_type, "componenti": _HOUSEHOLD_SIZE[tenant.household_type]},
        "isee": {"fascia": tenant.isee_band},
        "morosita": {
            "importo_euro": _euro(max(tenant.arrears_cents, 1)), "mensilita": max(tenant.arrears_months, 1),
            "dal": "2026-06-01", "tipo": "canone", "stadio": "late",
        },
        "richiesta": {"tipo": "microcredit", "importo_euro": _euro(max(tenant.arrears_cents, 100))},
    }
    if purpose is not None:
        message["finalita"] = purpose
    if isee_value_cents is not None:
        message["isee"]["valore_euro"] = _euro(isee_value_cents)
    return message
