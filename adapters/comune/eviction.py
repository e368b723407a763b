"""An eviction-procedure milestone (``fase-procedura-sfratto``, flow F9) as the Comune receives it.

Built from a minimised ``tenancy.eviction-milestone`` envelope (:class:`schemas.tenancy.EvictionMilestone`):
the stage (a code of list ``arrears-stages``), the deadline it sets, and where the tenancy is, so the Comune
can act before the date; and the Comune's own case id when ALER quoted the case token it received.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import orjson

from adapters.comune._native import DisclosureLabels, OutboundHeader, OutboundModel, expect_type, person_code_of
from schemas.envelope import Envelope
from schemas.tenancy import EvictionMilestone as TenancyEvictionMilestone

__all__ = ["EVICTION_MILESTONE_MESSAGE_TYPE", "EvictionMilestone", "encode_eviction_milestone"]

EVICTION_MILESTONE_MESSAGE_TYPE = "tenancy.eviction-milestone"


class PersonaInteressata(OutboundModel):
    codice_fiscale: str
    """Codice fiscale, or STP/ENI code, of the tenant."""


class EvictionMilestone(OutboundHeader):
    """The ``fase-procedura-sfratto`` the Comune receives (F9)."""

    tipo_messaggio: Literal["fase-procedura-sfratto"] = "fase-procedura-sfratto"
    persona: PersonaInteressata
    fase: str
    """Code of list ``arrears-stages``."""
    data_scadenza: date
    """The date that matters for this stage: payment deadline, hearing, or the bailiff's access date."""
    quartiere: str
    municipio: int
    id_caso: str | None = None
    """The Comune's own case id, when ALER quoted the case token the gateway gave it (flow F3): the Comune
    gets its own id back, ALER never sees it."""


def encode_eviction_milestone(envelope: Envelope, labels: DisclosureLabels) -> bytes:
    """A minimised ``tenancy.eviction-milestone`` envelope -> the Comune's ``fase-procedura-sfratto`` bytes."""
    expect_type(envelope, EVICTION_MILESTONE_MESSAGE_TYPE)
    payload = envelope.payload_as(TenancyEvictionMilestone)
    person = person_code_of(envelope)
    if person is None:
        raise ValueError("an eviction milestone needs the tenant's codice fiscale, STP or ENI code")
    milestone = EvictionMilestone(
        **OutboundHeader.header_fields(envelope, labels),
        persona=PersonaInteressata(codice_fiscale=person),
        fase=payload.stage,
        data_scadenza=payload.deadline,
        quartiere=payload.quartiere,
        municipio=payload.municipio,
        id_caso=envelope.subject.first("comune-case"),
    )
    return orjson.dumps(milestone.model_dump(mode="json"))
