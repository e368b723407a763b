"""The flow registry, purpose vocabulary and partner entitlements, loaded from versioned YAML data.

``gateway/registry/*.yaml`` ships the declared flows; a deployment may point at its own directory. The
registry is immutable once loaded; its ``revision`` is written into every decision (rule 16).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FINAL_LIFECYCLE_STATES", "ConsentRequirement", "Flow", "LifecycleState", "Partner", "PolicyRegistry",
    "PrivacyNotice", "Purpose", "load_registry",
]

LifecycleState = Literal["accepted", "rejected", "completed", "withdrawn"]
"""Where a referral stands as its recipient reports: taken up (``accepted``), refused (``rejected``), done
(``completed``), or given up by the person before it was decided (``withdrawn``: neither served nor refused,
so the sender knows another route may be needed)."""

FINAL_LIFECYCLE_STATES: tuple[LifecycleState, ...] = ("completed", "rejected", "withdrawn")
"""States a referral never leaves."""


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConsentRequirement(_Data):
    required: bool
    explicit: bool = False
    """Only a consent of type ``explicit`` permits (art. 9(2)(a): health and violence flows)."""
    objection: bool = True
    """For a flow that needs no consent: an objection the person recorded (art. 21, an active deny) stops it.
    False only where the legal basis excludes objection (vital interests)."""


class Lifecycle(_Data):
    """Maps a payload field of a feedback message to the referral lifecycle (:data:`LifecycleState`)."""

    field: str
    states: dict[str, LifecycleState]


class Flow(_Data):
    """One declared flow: sender -> recipient, message type, purpose, legal basis, allowed fields."""

    id: str
    title: str
    sender: str
    recipient: str
    message_type: str
    outbound_message_type: str
    purpose: str
    legal_basis: str
    consent: ConsentRequirement
    emergency_override: bool = False
    sensitivity: Literal["S0", "S1", "S2", "S3", "S4"]
    retention_days: int = Field(ge=1)
    allowed_fields: tuple[str, ...]
    obligations: tuple[str, ...] = ()
    refrains: tuple[str, ...] = ()
    deny_labels: tuple[str, ...] = ()
    """Sensitivity labels that never cross on this flow: a message carrying one is denied (rule 7)."""
    permitted_labels: tuple[str, ...] = ()
    """On a flow that needs no consent, the sensitive labels (rule 7) its declared basis explicitly permits:
    elements coded with them cross, elements coded with any other sensitive label are redacted. Consent-based
    flows take them from the explicit consent instead; a label the flow also denies is never permitted."""
    restricted_topic: bool = False
    """S4 data: delivered on ``s4.out.<recipient>``, apart from every other topic."""
    lifecycle: Lifecycle | None = None
    """For feedback flows: how this message advances the referral the recipient originally sent."""


class Purpose(_Data):
    code: str
    v3: str | None
    label_it: str


class PrivacyNotice(_Data):
    """A version of a privacy notice shown before consent (``notices.yaml``)."""

    uri: str
    version: str
    language: str
    status: Literal["current", "retired"]
    retired_on: date | None = None
    text: str

    @property
    def text_hash(self) -> str:
        """``sha256:<hex>`` of the UTF-8 text: what a consent records as the text it was given on."""
        return "sha256:" + hashlib.sha256(self.text.encode("utf-8")).hexdigest()


class Partner(_Data):
    code: str
    name: str
    kind: str
    entitlements: dict[str, tuple[str, ...]]
    """Purpose code -> roles of this organisation that may claim it."""

    @property
    def exchanges(self) -> bool:
        """Has topics and clients of its own: every partner but the gateway operator, which only publishes
        aggregates of the gateway's own records."""
        return self.kind != "gateway-operator"


@dataclass(frozen=True)
class PolicyRegistry:
    """Everything the decision needs besides consents."""

    revision: str
    flows: tuple[Flow, ...]
    purposes: dict[str, Purpose]
    partners: dict[str, Partner]
    notices: dict[tuple[str, str], PrivacyNotice] = field(default_factory=dict)
    """(uri, version) -> notice."""

    _routes: dict[tuple[str, str, str], tuple[Flow, ...]] = field(init=False, repr=False, compare=False)
    """(sender, message type, purpose) -> the declared flows of :meth:`flows_for`, in declaration order: asked
    once or twice for every message, so indexed once when the registry is built."""

    def __post_init__(self) -> None:
        routes: dict[tuple[str, str, str], list[Flow]] = {}
        for f in self.flows:
            routes.setdefault((f.sender, f.message_type, f.purpose), []).append(f)
        object.__setattr__(self, "_routes", {key: tuple(flows) for key, flows in routes.items()})

    def notice(self, uri: str, version: str) -> PrivacyNotice | None:
        return self.notices.get((uri, version))

    def flows_for(self, sender: str, message_type: str, purpose: str) -> tuple[Flow, ...]:
        """Declared flows a message of this type and purpose from ``sender`` may follow."""
        return self._routes.get((sender, message_type, purpose), ())

    def may_claim(self, organisation: str, role: str, purpose: str) -> bool:
        """Rule 3: is this organisation's role entitled to claim the purpose?"""
        partner = self.partners.get(organisation)
        return partner is not None and role in partner.entitlements.get(purpose, ())

    def exchanging(self) -> list[str]:
        """Codes of the partners with topics and clients (see :attr:`Partner.exchanges`), sorted."""
        return sorted(code for code, partner in self.partners.items() if partner.exchanges)

    def recipients(self) -> set[str]:
        return {f.recipient for f in self.flows}


def _read(directory: Path | None, name: str) -> dict[str, Any]:
    if directory is not None:
        text = (directory / name).read_text(encoding="utf-8")
    else:
        text = resources.files("gateway").joinpath("registry", name).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def load_registry(directory: Path | None = None) -> PolicyRegistry:
    """Load flows, purposes, partners and privacy notices from ``directory`` (default: the packaged
    registry)."""
    flows = _read(directory, "flows.yaml")
    purposes = _read(directory, "purposes.yaml")
    partners = _read(directory, "partners.yaml")
    notices = _read(directory, "notices.yaml") if directory is None or (directory / "notices.yaml").exists() \
        else {"notices": []}
    registry = PolicyRegistry(
        revision=str(flows["revision"]),
        flows=tuple(Flow.model_validate(f) for f in flows["flows"]),
        purposes={p["code"]: Purpose.model_validate(p) for p in purposes["purposes"]},
        partners={p["code"]: Partner.model_validate(p) for p in partners["partners"]},
        notices={(n.uri, n.version): n for n in (PrivacyNotice.model_validate(d) for d in notices["notices"])},
    )
    for flow in registry.flows:
        if flow.purpose not in registry.purposes:
            raise ValueError(f"flow {flow.id} names purpose {flow.purpose!r}, which is not in the vocabulary")
        for org in (flow.sender, flow.recipient):
            if org not in registry.partners:
                raise ValueError(f"flow {flow.id} names organisation {org!r}, which is not a declared partner")
    return registry
