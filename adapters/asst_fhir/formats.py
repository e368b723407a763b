"""The FHIR R4 resources the trust sends, by the name of their published JSON Schema (``contracts/asst/``).

Apart from :mod:`adapters.asst_fhir.contract`, which builds those schemas, so that the descriptor can name them
without importing every FHIR model the schemas describe: the schemas are built when contracts are published."""

from __future__ import annotations

from typing import Final

__all__ = ["INBOUND_RESOURCES"]

INBOUND_RESOURCES: Final[dict[str, str]] = {
    "Encounter": "encounter",
    "Immunization": "immunization",
    "ServiceRequest": "service-request",
    "Consent": "consent",
    "Patient": "patient",
    "Bundle": "bundle",
}
"""Resource type -> the name of its published schema (``contracts/asst/<name>.schema.json``)."""
