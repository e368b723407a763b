"""Native messages of ASST (FHIR R4), the Comune and FWA, as their systems would send them: each written by its
adapter package (``adapters.<partner>.simulator``) and gathered here."""

from adapters.asst_fhir.simulator import asst_discharge, asst_encounter
from adapters.comune.simulator import comune_case_event, comune_emergency
from adapters.fwa.simulator import fwa_outcome

__all__ = ["asst_discharge", "asst_encounter", "comune_case_event", "comune_emergency", "fwa_outcome"]
