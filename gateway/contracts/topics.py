"""The Kafka topics of a registry and the ids of their AsyncAPI channels."""

from __future__ import annotations

import re

from gateway.policy.registry import PolicyRegistry
from gateway.settings import TopicSettings

__all__ = ["channel_id", "topic_names"]

def topic_names(registry: PolicyRegistry, topics: TopicSettings | None = None) -> list[str]:
    """The topics :meth:`gateway.bootstrap.Gateway.topics` creates for ``registry``, in the same order."""
    t = topics or TopicSettings(prefix="")
    names = [t.name(kind, p) for p in registry.exchanging() for kind in ("in", "out", "status", "dlq")]
    restricted = sorted({f.recipient for f in registry.flows if f.restricted_topic})
    return [*names, *(t.name("s4.out", p) for p in restricted), t.consent_events()]


def channel_id(address: str) -> str:
    """The channel id of a topic: ``in.aler`` -> ``in_aler``, ``gateway.consent-events`` ->
    ``gateway_consent_events``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", address)

