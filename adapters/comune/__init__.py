"""Comune di Milano adapter: social-service case events and emergency events in, referrals out.

In (:func:`decode`, dispatched on ``tipo_messaggio``):

* ``evento-caso`` -> ``social.case-event`` (:mod:`adapters.comune.cases`);
* ``evento-emergenza`` -> ``emergency.social-event`` (:mod:`adapters.comune.emergency`, F10).

Out (each ``(envelope, labels) -> bytes``):

* :func:`encode_case_referral`: ``social.case-referral`` -> ``segnalazione-fragilita`` (F2);
* :func:`encode_eviction_milestone`: ``tenancy.eviction-milestone`` -> ``fase-procedura-sfratto`` (F9);
* :func:`encode_emergency_event`: ``emergency.social-event`` -> ``segnalazione-pronto-intervento`` (F10, to
  the emergency social service).

The court-mandate level the Comune records for minors is accepted on decode and has no output field anywhere.
:data:`DESCRIPTOR` is what the core knows of the Comune, its emergency social service (``pis``) included.
"""

from typing import Final

from adapters.comune._native import DisclosureLabels
from adapters.comune.cases import ComuneCaseEvent
from adapters.comune.emergency import ComuneEmergencyEvent, EmergencyReferral, encode_emergency_event
from adapters.comune.eviction import EvictionMilestone, encode_eviction_milestone
from adapters.comune.examples import EXAMPLES
from adapters.comune.inbound import decode
from adapters.comune.referral import FragilityReferral, encode_case_referral
from adapters.descriptor import ContractFormats, PartnerDescriptor

__all__ = [
    "DESCRIPTOR",
    "ComuneCaseEvent",
    "ComuneEmergencyEvent",
    "DisclosureLabels",
    "EmergencyReferral",
    "EvictionMilestone",
    "FragilityReferral",
    "decode",
    "encode_case_referral",
    "encode_emergency_event",
    "encode_eviction_milestone",
]

DESCRIPTOR: Final = PartnerDescriptor(
    organisation="comune",
    decode=decode,
    encoders={"social.case-referral": encode_case_referral, "tenancy.eviction-milestone": encode_eviction_milestone},
    encoders_for={"pis": {"emergency.social-event": encode_emergency_event}},
    content_type="application/json",
    examples=EXAMPLES,
    formats=ContractFormats(
        inbound={"comune/evento-caso.schema.json": ComuneCaseEvent,
                 "comune/evento-emergenza.schema.json": ComuneEmergencyEvent},
        outbound={"comune/segnalazione-fragilita.schema.json": FragilityReferral,
                  "comune/fase-procedura-sfratto.schema.json": EvictionMilestone,
                  "pis/segnalazione-pronto-intervento.schema.json": EmergencyReferral},
        deliveries={("comune", "social.case-referral"): "comune/segnalazione-fragilita.schema.json",
                    ("comune", "tenancy.eviction-milestone"): "comune/fase-procedura-sfratto.schema.json",
                    ("pis", "emergency.social-event"): "pis/segnalazione-pronto-intervento.schema.json"},
    ),
)
"""The Comune as the core sees it; its emergency social service (``pis``, F10) has a topic of its own."""
