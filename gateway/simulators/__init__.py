"""Synthetic partner systems: what ALER's tenancy system and an operator capturing consent would send.

Used by ``gateway demo``, the tests and the benchmarks; built on :mod:`gateway.identity.synthetic`.
"""

from gateway.simulators.others import (
    asst_discharge,
    asst_encounter,
    comune_case_event,
    comune_emergency,
    fwa_outcome,
)
from gateway.simulators.partners import aler_arrears_message, fhir_consent

__all__ = [
    "aler_arrears_message",
    "asst_discharge",
    "asst_encounter",
    "comune_case_event",
    "comune_emergency",
    "fhir_consent",
    "fwa_outcome",
]
