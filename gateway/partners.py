"""The partners the gateway knows: one descriptor per adapter package (:class:`adapters.descriptor.PartnerDescriptor`).

The core builds its tables from these descriptors and nothing else: the decoders and encoders of
:mod:`gateway.routing`, the formats and golden examples of :mod:`gateway.contracts`, the readers of
:mod:`gateway.pipeline.backfill`. Adding a partner is adding its adapter package (which exports ``DESCRIPTOR``) to
:data:`BUILT_IN` and its organisation and flows to the registry data (``gateway/registry/*.yaml``); a gateway may
also be built with descriptors of its own (:func:`gateway.bootstrap.build`).

Adapter packages are imported when first asked for, not when this module is: :func:`descriptor` imports only
the package of the partner it is asked about (the contract kit checking one partner's message loads no other
adapter), :func:`built_in` (and :data:`PARTNERS`) every one of them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from adapters.descriptor import PartnerDescriptor

__all__ = ["BUILT_IN", "PARTNERS", "PartnerDescriptor", "built_in", "check_partners", "descriptor"]

BUILT_IN: Final[Mapping[str, str]] = MappingProxyType({
    "aler": "adapters.aler",
    "asst": "adapters.asst_fhir",
    "comune": "adapters.comune",
    "fwa": "adapters.fwa",
})
"""The built-in partners (ALER Milano, ASST Fatebenefratelli-Sacco, Comune di Milano, Fondazione Welfare
Ambrosiano): organisation -> the adapter package that exports its ``DESCRIPTOR``."""


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


@functools.cache
def descriptor(organisation: str) -> PartnerDescriptor | None:
    """The descriptor of the built-in partner ``organisation``, importing its adapter package (and no other); None
    for an organisation without an adapter of its own."""
    package = BUILT_IN.get(organisation)
    if package is None:
        return None
    found = importlib.import_module(package).DESCRIPTOR
    if not isinstance(found, PartnerDescriptor) or found.organisation != organisation:
        raise ValueError(f"{package}.DESCRIPTOR is not the descriptor of {organisation}")
    return found


@functools.cache
def built_in() -> tuple[PartnerDescriptor, ...]:
    """Every built-in partner's descriptor, in :data:`BUILT_IN` order, checked (:func:`check_partners`)."""
    return check_partners(d for d in map(descriptor, BUILT_IN) if d is not None)


if TYPE_CHECKING:
    PARTNERS: tuple[PartnerDescriptor, ...]
    """The built-in partners' descriptors (:func:`built_in`), loaded when first read."""


def __getattr__(name: str) -> tuple[PartnerDescriptor, ...]:
    """:data:`PARTNERS`, loaded when first read (PEP 562)."""
    if name == "PARTNERS":
        return built_in()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
