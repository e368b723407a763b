"""Consent-aware interoperability gateway for the partners of Milan's public-housing neighbourhoods.

Partner systems (ALER Milano, ASST Fatebenefratelli-Sacco, Comune di Milano, Fondazione Welfare
Ambrosiano) submit native messages; the gateway decodes them into canonical envelopes, decides under the
flow registry and the person's consent whether and what may cross, records every decision and disclosure
in a tamper-evident audit log, and delivers minimised messages over Kafka (or the embedded bus).

Start at :mod:`gateway.bootstrap` (the composition root) and :mod:`gateway.pipeline` (the path of a message).
"""

__all__: list[str] = []
