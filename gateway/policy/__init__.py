"""Policy: the flow registry, the consent records it consults, the decision, and per-recipient minimisation.

Pure functions over data (privacy.md "Decision rules"); the pipeline loads the data from the store.
"""

from gateway.policy.consent import ConsentRecord
from gateway.policy.decision import Decision, DecisionRequest, DenialReason, decide, sender_reason_class
from gateway.policy.minimise import minimise
from gateway.policy.registry import Flow, PolicyRegistry, load_registry

__all__ = [
    "ConsentRecord",
    "Decision",
    "DecisionRequest",
    "DenialReason",
    "Flow",
    "PolicyRegistry",
    "decide",
    "load_registry",
    "minimise",
    "sender_reason_class",
]
