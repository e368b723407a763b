"""A person's consent as the decision sees it: one immutable version of a consent lineage, R5-shaped.

The record follows privacy.md "Consent record": status, subject (by pseudonym), grantor (the person, or a
guardian / amministratore di sostegno with evidence), grantees and controllers, legal basis, consent type
(explicit / express / opt-out), the notice shown (uri, version, text hash, language), a base decision with
one provision and one nested level of provisions that reverse it, validity period, review date, capture
evidence, withdrawal, obligations and refrains, and a hash of the record.

Recorded from a FHIR R4 or R5 Consent (:mod:`gateway.consents.fhir`); stored under the subject's pseudonym,
never under a codice fiscale, as :meth:`ConsentRecord.document` (the R5 shape, as JSON).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any, Literal

from gateway.audit.canonical import canonical_json

__all__ = [
    "DISCLOSE",
    "Capture",
    "ConsentRecord",
    "ConsentStatus",
    "ConsentType",
    "Disclosure",
    "Grantor",
    "Notice",
    "Provision",
    "Withdrawal",
]

ConsentStatus = Literal["draft", "active", "inactive", "entered-in-error"]
ConsentType = Literal["explicit", "express", "opt-out"]
"""explicit: art. 9(2)(a) / art. 49 wording, separately signed; express: an affirmative act (art. 6(1)(a));
opt-out: recorded objection or refusal (a deny the person asked for)."""
GrantorRole = Literal["subject", "guardian", "support-administrator", "parent"]
CaptureMethod = Literal["paper-signed", "assisted", "authenticated-portal"]
DISCLOSE = "disclose"
"""The only action the gateway performs on a person's data: disclosing it to a recipient."""


@dataclass(frozen=True, slots=True)
class Notice:
    """The privacy notice the person was shown when consenting."""

    uri: str
    version: str
    text_hash: str
    """``sha256:<hex>`` of the notice text as shown."""
    language: str


@dataclass(frozen=True, slots=True)
class Grantor:
    """Who gave the consent: the person, or someone entitled to act for them, with the evidence of that."""

    role: GrantorRole = "subject"
    evidence: str | None = None
    """Reference of the document proving the authority (court decree of the amministratore di sostegno,
    guardianship order); required for every role but ``subject``."""

    @property
    def proven(self) -> bool:
        return self.role == "subject" or bool(self.evidence)


@dataclass(frozen=True, slots=True)
class Capture:
    """How the consent was captured (seed 003 §1.10: often by an operator on the citizen's behalf)."""

    method: CaptureMethod
    channel: str | None = None
    """Where: e.g. ``casa-centre``, ``home-visit``, ``portal``."""
    operator: str | None = None
    """Pseudonymous operator reference, never a name."""
    document_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """When, by whom, through which channel and on which evidence a consent was withdrawn."""

    at: datetime
    by: GrantorRole = "subject"
    channel: str | None = None
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What a provision is asked about: one message going to one recipient."""

    purpose: str | None
    recipient: str
    message_type: str
    labels: frozenset[str] = frozenset()
    occurred_at: datetime | None = None
    """When the data arose; a provision with a data period never matches data of unknown date."""


@dataclass(frozen=True, slots=True)
class Provision:
    """One provision. All populated elements must match (AND); any value within an element matches (OR);
    an empty element matches anything (rule 5). Nested provisions reverse their parent's decision."""

    purposes: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    data_classes: frozenset[str] = frozenset()
    """Canonical message types the provision is about."""
    security_labels: frozenset[str] = frozenset()
    """The provision is about data carrying any of these labels."""
    period_start: datetime | None = None
    period_end: datetime | None = None
    """When the provision applies (nested provisions only; the base uses the consent's validity period)."""
    data_period_start: datetime | None = None
    data_period_end: datetime | None = None
    """Which data it is about, by when the data arose."""

    def matches(self, disclosure: Disclosure, now: datetime) -> bool:
        def within(start: datetime | None, end: datetime | None, moment: datetime | None) -> bool:
            if start is None and end is None:
                return True
            return moment is not None and (start is None or start <= moment) and (end is None or moment < end)

        return (
            (not self.purposes or disclosure.purpose in self.purposes)
            and (not self.recipients or disclosure.recipient in self.recipients)
            and (not self.actions or DISCLOSE in self.actions)
            and (not self.data_classes or disclosure.message_type in self.data_classes)
            and (not self.security_labels or bool(disclosure.labels & self.security_labels))
            and within(self.period_start, self.period_end, now)
            and within(self.data_period_start, self.data_period_end, disclosure.occurred_at)
        )


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One version of a consent."""

    consent_id: str
    """Lineage id: every version of one consent shares it."""
    version: int
    subject_pseudonym: str
    status: ConsentStatus
    decision: Literal["permit", "deny"]
    purposes: frozenset[str]
    """Base provision purposes: never empty (rule 5, purpose is no wildcard)."""
    recipients: frozenset[str] = field(default_factory=frozenset)
    """Organisations (grantees) the base provision names; empty means any recipient of a declared flow."""
    period_start: datetime | None = None
    period_end: datetime | None = None
    recorded_at: datetime | None = None
    withdrawn: bool = False
    """True for the version a withdrawal created."""
    actions: frozenset[str] = frozenset()
    data_classes: frozenset[str] = frozenset()
    security_labels: frozenset[str] = frozenset()
    data_period_start: datetime | None = None
    data_period_end: datetime | None = None
    provisions: tuple[Provision, ...] = ()
    """Nested level: each reverses the base decision where it matches."""
    consent_type: ConsentType = "express"
    grantor: Grantor = field(default_factory=Grantor)
    controllers: frozenset[str] = frozenset()
    legal_basis: str | None = None
    notice: Notice | None = None
    capture: Capture | None = None
    review_date: date | None = None
    withdrawal: Withdrawal | None = None
    obligations: frozenset[str] = frozenset()
    refrains: frozenset[str] = frozenset()

    @property
    def ref(self) -> str:
        """``id@version``, the consent reference written in decisions and outgoing messages."""
        return f"{self.consent_id}@{self.version}"

    def in_period(self, now: datetime) -> bool:
        return (self.period_start is None or self.period_start <= now) and (
            self.period_end is None or now < self.period_end
        )

    @property
    def base(self) -> Provision:
        return Provision(
            purposes=self.purposes, recipients=self.recipients, actions=self.actions,
            data_classes=self.data_classes, security_labels=self.security_labels,
            data_period_start=self.data_period_start, data_period_end=self.data_period_end,
        )

    def evaluate(self, disclosure: Disclosure, now: datetime
                 ) -> tuple[Literal["permit", "deny"], str, Provision] | None:
        """What this consent says about one disclosure: (decision, matched provision path, provision), or
        ``None`` when its base provision does not cover it. The first matching nested provision reverses
        the base decision."""
        base = self.base
        if not base.matches(disclosure, now):
            return None
        for index, nested in enumerate(self.provisions):
            if nested.matches(disclosure, now):
                return ("deny" if self.decision == "permit" else "permit"), f"provision.provision[{index}]", nested
        return self.decision, "provision", base

    # --- the stored document (R5 shape) -------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The record as an R5-shaped JSON object (what is stored and hashed); no direct identifier."""
        doc: dict[str, Any] = {
            "resourceType": "Consent", "id": self.consent_id, "meta": {"versionId": str(self.version)},
            "status": self.status, "subject": {"pseudonym": self.subject_pseudonym},
            "decision": self.decision, "consentType": self.consent_type,
            "grantor": _plain(self.grantor), "grantee": sorted(self.recipients),
            "controller": sorted(self.controllers), "regulatoryBasis": self.legal_basis,
            "period": {"start": _iso(self.period_start), "end": _iso(self.period_end)},
            "provision": {**_provision_doc(self.base), "provision": [_provision_doc(p) for p in self.provisions]},
            "notice": _plain(self.notice) if self.notice else None,
            "capture": _plain(self.capture) if self.capture else None,
            "reviewDate": self.review_date.isoformat() if self.review_date else None,
            "withdrawal": _plain(self.withdrawal) if self.withdrawal else None,
            "obligations": sorted(self.obligations), "refrains": sorted(self.refrains),
            "recorded": _iso(self.recorded_at),
        }
        return doc

    @property
    def record_hash(self) -> str:
        """``sha256:<hex>`` of the RFC 8785 canonical form of :meth:`document`."""
        return "sha256:" + hashlib.sha256(canonical_json(self.document())).hexdigest()

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ConsentRecord:
        provision = doc["provision"]
        base = _provision_of(provision)
        period = doc.get("period") or {}
        return cls(
            consent_id=doc["id"], version=int(doc["meta"]["versionId"]), subject_pseudonym=doc["subject"]["pseudonym"],
            status=doc["status"], decision=doc["decision"], purposes=base.purposes, recipients=base.recipients,
            period_start=_dt(period.get("start")), period_end=_dt(period.get("end")),
            recorded_at=_dt(doc.get("recorded")), withdrawn=doc.get("withdrawal") is not None,
            actions=base.actions, data_classes=base.data_classes, security_labels=base.security_labels,
            data_period_start=base.data_period_start, data_period_end=base.data_period_end,
            provisions=tuple(_provision_of(p) for p in provision.get("provision") or ()),
            consent_type=doc.get("consentType", "express"),
            grantor=Grantor(**doc["grantor"]) if doc.get("grantor") else Grantor(),
            controllers=frozenset(doc.get("controller") or ()), legal_basis=doc.get("regulatoryBasis"),
            notice=Notice(**doc["notice"]) if doc.get("notice") else None,
            capture=Capture(**doc["capture"]) if doc.get("capture") else None,
            review_date=date.fromisoformat(doc["reviewDate"]) if doc.get("reviewDate") else None,
            withdrawal=_withdrawal(doc["withdrawal"]) if doc.get("withdrawal") else None,
            obligations=frozenset(doc.get("obligations") or ()), refrains=frozenset(doc.get("refrains") or ()),
        )

    def next_version(self, **changes: Any) -> ConsentRecord:
        """The next version of this lineage with ``changes`` applied."""
        return replace(self, version=self.version + 1, **changes)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _plain(value: Any) -> dict[str, Any]:
    return {f.name: _iso(v) if isinstance(v := getattr(value, f.name), datetime) else v for f in fields(value)}


def _withdrawal(doc: dict[str, Any]) -> Withdrawal:
    return Withdrawal(**{**doc, "at": datetime.fromisoformat(doc["at"])})


def _provision_doc(p: Provision) -> dict[str, Any]:
    return {
        "purpose": sorted(p.purposes), "actor": sorted(p.recipients), "action": sorted(p.actions),
        "class": sorted(p.data_classes), "securityLabel": sorted(p.security_labels),
        "period": {"start": _iso(p.period_start), "end": _iso(p.period_end)},
        "dataPeriod": {"start": _iso(p.data_period_start), "end": _iso(p.data_period_end)},
    }


def _provision_of(doc: dict[str, Any]) -> Provision:
    period = doc.get("period") or {}
    data_period = doc.get("dataPeriod") or {}
    return Provision(
        purposes=frozenset(doc.get("purpose") or ()), recipients=frozenset(doc.get("actor") or ()),
        actions=frozenset(doc.get("action") or ()), data_classes=frozenset(doc.get("class") or ()),
        security_labels=frozenset(doc.get("securityLabel") or ()),
        period_start=_dt(period.get("start")), period_end=_dt(period.get("end")),
        data_period_start=_dt(data_period.get("start")), data_period_end=_dt(data_period.get("end")),
    )
