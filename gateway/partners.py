"""The partners the gateway knows: one descriptor per adapter package (:class:`adapters.descriptor.PartnerDescriptor`).

The core builds its tables from this list and nothing else: the decoders and encoders of
:mod:`gateway.routing`, the golden examples of :mod:`gateway.contracts.golden`. Adding a partner is adding its adapter
package (which exports ``DESCRIPTOR``) to :data:`PARTNERS` and its organisation and flows to the registry data
(``gateway/registry/*.yaml``); a gateway may also be built with descriptors of its own
(:func:`gateway.bootstrap.build`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import adapters.aler
import adapters.asst_fhir
import adapters.comune
import adapters.fwa
from adapters.descriptor import PartnerDescriptor

__all__ = ["PARTNERS", "PartnerDescriptor", "check_partners"]

PARTNERS: Final[tuple[PartnerDescriptor, ...]] = (
    adapters.aler.DESCRIPTOR,
    adapters.asst_fhir.DESCRIPTOR,
    adapters.comune.DESCRIPTOR,
    adapters.fwa.DESCRIPTOR,
)
"""The built-in partners: ALER Milano, ASST Fatebenefratelli-Sacco, Comune di Milano, Fondazione Welfare
Ambrosiano."""


def check_partners(partners: Iterable[PartnerDescriptor]) -> tuple[PartnerDescriptor, ...]:
    """``partners`` as a tuple, unless two share an organisation or write the same delivery (ValueError)."""
    result = tuple(partners)
    organisations = [p.organisation for p in result]
    repeated = sorted({o for o in organisations if organisations.count(o) > 1})
    if repeated:
        raise ValueError(f"more than one descriptor for {repeated}")
    deliveries = [delivery for partner in result for delivery in partner.outbound()]
    clashing = sorted({d for d in deliveries if deliveries.count(d) > 1})
    if clashing:
        raise ValueError(f"more than one encoder for the deliveries {clashing}")
    return result
