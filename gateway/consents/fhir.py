"""FHIR Consent on the wire: R4 (4.0.1) accepted and produced, R5 accepted; both become one R5-shaped record.

What the standard resource has no element for travels in extensions of the gateway (base
:data:`EXTENSION_BASE`): the consent type (explicit / express / opt-out), the notice shown (uri, version,
SHA-256 of the text, language), the grantor's role and evidence, the capture evidence, a review date,
obligations and refrains. Provisions: purposes, actors with role IRCP (recipient organisations), actions,
data classes (canonical message types), security labels, period and data period, and one nested level that
reverses the decision (R4: a nested ``provision.type`` opposite to its parent).

The person is named by codice fiscale (either Italian system URI), STP or ENI code on the way in; the
gateway stores only a pseudonym, so a produced Consent names the person by that pseudonym.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal, cast

from fhir.resources.consent import Consent as ConsentR5
from fhir.resources.R4B.consent import Consent as ConsentR4
from pydantic import ValidationError

from adapters.fhir_narrative import generated_narrative
from gateway.errors import ContractViolation
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from gateway.policy.consent import (
    Capture,
    ConsentRecord,
    ConsentStatus,
    ConsentType,
    Grantor,
    Notice,
    Provision,
)
from gateway.policy.registry import PolicyRegistry
from schemas.errors import FieldProblem, problems_from_validation

__all__ = [
    "CF_SYSTEMS",
    "EXTENSION_BASE",
    "MESSAGE_TYPE_SYSTEM",
    "ORGANISATION_SYSTEM",
    "PSEUDONYM_SYSTEM",
    "PURPOSE_SYSTEM",
    "FhirVersion",
    "parse_consent",
    "to_fhir_r4",
]

FhirVersion = Literal["4.0", "5.0"]

CF_SYSTEMS = frozenset({"http://hl7.it/sid/codiceFiscale", "urn:oid:2.16.840.1.113883.2.9.4.3.2"})
STP_ENI_SYSTEM = "https://gateway.quartieri.example/fhir/sid/stp-eni"
PURPOSE_SYSTEM = "https://gateway.quartieri.example/fhir/CodeSystem/purpose"
ORGANISATION_SYSTEM = "https://gateway.quartieri.example/fhir/sid/organisation"
PSEUDONYM_SYSTEM = "https://gateway.quartieri.example/fhir/sid/pseudonym"
MESSAGE_TYPE_SYSTEM = "https://gateway.quartieri.example/fhir/CodeSystem/message-type"
ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"
LABEL_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RECIPIENT_ROLE = ("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")
EXTENSION_BASE = "https://gateway.quartieri.example/fhir/StructureDefinition/"

_STATUS: dict[str, ConsentStatus] = {
    "active": "active", "draft": "draft", "proposed": "draft", "inactive": "inactive", "rejected": "inactive",
    "entered-in-error": "entered-in-error",
}
_R4_STATUS: dict[ConsentStatus, str] = {"active": "active", "draft": "draft", "inactive": "inactive",
                                        "entered-in-error": "entered-in-error"}
_CONSENT_TYPES = ("explicit", "express", "opt-out")
_GRANTOR_ROLES = ("guardian", "support-administrator", "parent")
_CAPTURE_METHODS = ("paper-signed", "assisted", "authenticated-portal")
_ACTIONS = ("collect", "access", "use", "disclose", "correct")


def _problem(pointer: str, rule: str, message: str) -> ContractViolation:
    return ContractViolation("the Consent cannot be recorded", [FieldProblem(pointer, rule, message)])


def parse_consent(document: dict[str, Any], registry: PolicyRegistry, fhir_version: FhirVersion = "4.0",
                  ) -> tuple[tuple[str, str], ConsentRecord]:
    """A FHIR Consent -> ((identifier kind, value), consent record without pseudonym, id or version).

    Checks what the decision relies on and fhir.resources does not: a decision, purposes from the
    vocabulary, partners as actors, nested provisions that reverse, the notice on record and not retired,
    evidence for a grantor other than the person."""
    if document.get("resourceType") != "Consent":
        raise _problem("/resourceType", "resource-type", "send a FHIR Consent resource")
    model = ConsentR5 if fhir_version == "5.0" else ConsentR4
    try:
        consent = model.model_validate(document)
    except ValidationError as exc:
        raise ContractViolation(f"the Consent is not valid FHIR R{fhir_version[0]}",
                                problems_from_validation(exc)) from None
    except RecursionError:
        raise _problem("", "depth", "the Consent is nested too deeply") from None
    except (AttributeError, TypeError, ValueError):
        # fhir.resources fails this way on some shapes it does not expect (an object where a string
        # belongs...): still the sender's malformed Consent, never a server error (found by schemathesis)
        raise _problem("", "fhir", f"the Consent is not valid FHIR R{fhir_version[0]}: check each element's "
                       "type against the specification") from None
    if fhir_version == "5.0":
        return _parse_r5(cast(ConsentR5, consent), registry)
    return _parse_r4(cast(ConsentR4, consent), registry)


# --- R4 ----------------------------------------------------------------------------------------------------

def _parse_r4(consent: ConsentR4, registry: PolicyRegistry) -> tuple[tuple[str, str], ConsentRecord]:
    identifier = _person(consent.patient, "/patient")
    provision = consent.provision
    if provision is None or provision.type not in ("permit", "deny"):
        raise _problem("/provision/type", "required", "state provision.type: permit or deny")
    decision = cast(Literal["permit", "deny"], provision.type)
    nested = []
    for i, child in enumerate(provision.provision or []):
        if child.type is not None and child.type == provision.type:
            raise _problem(f"/provision/provision/{i}/type", "nested-reverses",
                           "a nested provision reverses its parent: give the opposite type or none")
        if child.provision:
            raise _problem(f"/provision/provision/{i}/provision", "nesting-depth", "one nested level only")
        nested.append(_provision(child, registry, f"/provision/provision/{i}", [c for c in child.class_fhir or []]))
    base = _provision(provision, registry, "/provision", list(provision.class_fhir or []))
    performer = consent.performer[0] if consent.performer else None
    record = _record(
        consent, registry, status=consent.status, decision=decision, base=base, nested=tuple(nested),
        period=provision.period, grantor_reference=performer,
        grantor_is_subject=performer is None or performer.type == "Patient",
        controllers=consent.organization, legal_basis=_text(consent.policyRule),
    )
    return identifier, record


# --- R5 ----------------------------------------------------------------------------------------------------

def _parse_r5(consent: ConsentR5, registry: PolicyRegistry) -> tuple[tuple[str, str], ConsentRecord]:
    identifier = _person(consent.subject, "/subject")
    if consent.decision not in ("permit", "deny"):
        raise _problem("/decision", "required", "state decision: permit or deny")
    decision = cast(Literal["permit", "deny"], consent.decision)
    provisions = consent.provision or []
    if len(provisions) != 1:
        raise _problem("/provision", "cardinality", "give exactly one base provision")
    provision = provisions[0]
    nested = []
    for i, child in enumerate(provision.provision or []):
        if child.provision:
            raise _problem(f"/provision/0/provision/{i}/provision", "nesting-depth", "one nested level only")
        nested.append(_provision(child, registry, f"/provision/0/provision/{i}", list(child.documentType or [])))
    base = _provision(provision, registry, "/provision/0", list(provision.documentType or []))
    grantor = consent.grantor[0] if consent.grantor else None
    basis = consent.regulatoryBasis or []
    record = _record(
        consent, registry, status=consent.status, decision=decision, base=base, nested=tuple(nested),
        period=consent.period, grantor_reference=grantor,
        grantor_is_subject=grantor is None or grantor.type == "Patient",
        controllers=consent.controller, legal_basis=_text(basis[0]) if basis else None,
    )
    return identifier, record


# --- shared ------------------------------------------------------------------------------------------------

def _record(consent: Any, registry: PolicyRegistry, *, status: Any, decision: Literal["permit", "deny"],
            base: Provision, nested: tuple[Provision, ...], period: Any, grantor_reference: Any,
            grantor_is_subject: bool, controllers: Any, legal_basis: str | None) -> ConsentRecord:
    if status not in _STATUS:
        raise _problem("/status", "code-list", f"status must be one of: {', '.join(sorted(_STATUS))}")
    if not base.purposes:
        raise _problem("/provision/purpose", "required", f"name at least one purpose in system {PURPOSE_SYSTEM}")
    extensions = _extensions(consent.extension)
    consent_type = cast(ConsentType, _code(extensions, "consent-type", _CONSENT_TYPES, "/extension") or "express")
    grantor = _grantor(grantor_reference, grantor_is_subject)
    notice = _notice(extensions.get("notice"), registry)
    if status == "active" and decision == "permit" and notice is None:
        raise _problem("/extension", "notice-required",
                       f"state the privacy notice the person was shown ({EXTENSION_BASE}notice)")
    if status == "active" and not grantor.proven:
        raise _problem("/extension", "grantor-evidence",
                       "a consent given by a guardian or support administrator needs the evidence of that authority")
    review = extensions.get("review-date")
    return ConsentRecord(
        consent_id="", version=1, subject_pseudonym="", status=_STATUS[str(status)], decision=decision,
        purposes=base.purposes, recipients=base.recipients, actions=base.actions, data_classes=base.data_classes,
        security_labels=base.security_labels, data_period_start=base.data_period_start,
        data_period_end=base.data_period_end, provisions=nested,
        period_start=_aware(period.start) if period and period.start else None,
        period_end=_aware(period.end) if period and period.end else None,
        consent_type=consent_type, grantor=grantor, controllers=_organisations(controllers, "/controller", registry),
        legal_basis=legal_basis, notice=notice, capture=_capture(extensions.get("capture")),
        review_date=_date(review[0].valueDate) if review else None,
        obligations=frozenset(e.valueCode for e in extensions.get("obligation", []) if e.valueCode),
        refrains=frozenset(e.valueCode for e in extensions.get("refrain", []) if e.valueCode),
    )


def _provision(provision: Any, registry: PolicyRegistry, pointer: str, classes: list[Any]) -> Provision:
    purposes = []
    for i, coding in enumerate(provision.purpose or []):
        if coding.system != PURPOSE_SYSTEM:
            continue
        if coding.code not in registry.purposes:
            raise _problem(f"{pointer}/purpose/{i}/code", "code-list",
                           "not a purpose of the gateway's vocabulary (see the records of processing)")
        purposes.append(coding.code)
    recipients = frozenset(
        a.reference.identifier.value
        for a in provision.actor or []
        if a.reference and a.reference.identifier and a.reference.identifier.system == ORGANISATION_SYSTEM
        and a.reference.identifier.value
    )
    if any(r not in registry.partners for r in recipients):
        raise _problem(f"{pointer}/actor", "code-list", "an actor names an organisation that is not a partner")
    actions = frozenset(c.code for a in provision.action or [] for c in a.coding or []
                        if c.system == ACTION_SYSTEM and c.code)
    if actions - set(_ACTIONS):
        raise _problem(f"{pointer}/action", "code-list", f"actions are codes of {ACTION_SYSTEM}")
    period, data_period = provision.period, provision.dataPeriod
    return Provision(
        purposes=frozenset(purposes), recipients=recipients, actions=actions,
        data_classes=frozenset(c.code for c in classes if c.system == MESSAGE_TYPE_SYSTEM and c.code),
        security_labels=frozenset(c.code for c in provision.securityLabel or [] if c.code),
        period_start=_aware(period.start) if period and period.start else None,
        period_end=_aware(period.end) if period and period.end else None,
        data_period_start=_aware(data_period.start) if data_period and data_period.start else None,
        data_period_end=_aware(data_period.end) if data_period and data_period.end else None,
    )


def _person(reference: Any, pointer: str) -> tuple[str, str]:
    ident = reference.identifier if reference else None
    if ident is None or not ident.value:
        raise _problem(f"{pointer}/identifier", "required", "identify the person by codice fiscale, STP or ENI code")
    if ident.system not in CF_SYSTEMS and ident.system != STP_ENI_SYSTEM:
        systems = ", ".join(sorted([*CF_SYSTEMS, STP_ENI_SYSTEM]))
        raise _problem(f"{pointer}/identifier/system", "identifier-system", f"use one of: {systems}")
    try:
        kind = classify(ident.value)
    except InvalidPersonIdentifier as exc:
        raise _problem(f"{pointer}/identifier/value", "identifier", exc.reason) from None
    return kind, validate(ident.value) if kind == "cf" else ident.value.upper()


def _extensions(extensions: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for extension in extensions or []:
        if extension.url and extension.url.startswith(EXTENSION_BASE):
            found.setdefault(extension.url.removeprefix(EXTENSION_BASE), []).append(extension)
    return found


def _code(extensions: dict[str, list[Any]], name: str, allowed: tuple[str, ...], pointer: str) -> str | None:
    values = extensions.get(name)
    if not values:
        return None
    code = values[0].valueCode
    if code not in allowed:
        raise _problem(pointer, "code-list", f"{EXTENSION_BASE}{name} must be one of: {', '.join(allowed)}")
    return str(code)


def _parts(extension: Any) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for part in extension.extension or []:
        value = next((getattr(part, f) for f in ("valueUri", "valueString", "valueCode", "valueDate")
                      if getattr(part, f, None) is not None), None)
        parts[str(part.url)] = value
    return parts


def _notice(extensions: list[Any] | None, registry: PolicyRegistry) -> Notice | None:
    if not extensions:
        return None
    parts = _parts(extensions[0])
    uri, version, text_hash = parts.get("url"), parts.get("version"), parts.get("textHash")
    if not (uri and version and text_hash):
        raise _problem("/extension", "notice", "a notice names its url, version and textHash")
    on_record = registry.notice(str(uri), str(version))
    if on_record is None:
        raise _problem("/extension", "notice", "no privacy notice with this url and version is on record")
    if on_record.status != "current":
        raise _problem("/extension", "notice-retired", "this notice version is retired: show the current one")
    if text_hash != on_record.text_hash:
        raise _problem("/extension", "notice-text", "the text hash differs from the notice text on record")
    return Notice(uri=str(uri), version=str(version), text_hash=str(text_hash),
                  language=str(parts.get("language") or on_record.language))


def _grantor(reference: Any, is_subject: bool) -> Grantor:
    if is_subject:
        return Grantor()
    parts = {e.url.removeprefix(EXTENSION_BASE): e for e in reference.extension or [] if e.url}
    role_ext = parts.get("grantor-role")
    role = role_ext.valueCode if role_ext else None
    if role not in _GRANTOR_ROLES:
        raise _problem("/grantor", "code-list",
                       f"a grantor who is not the person states {EXTENSION_BASE}grantor-role: "
                       f"{', '.join(_GRANTOR_ROLES)}")
    evidence = parts.get("grantor-evidence")
    return Grantor(role=role, evidence=evidence.valueString if evidence else None)


def _capture(extensions: list[Any] | None) -> Capture | None:
    if not extensions:
        return None
    parts = _parts(extensions[0])
    if parts.get("method") not in _CAPTURE_METHODS:
        raise _problem("/extension", "code-list", f"capture method must be one of: {', '.join(_CAPTURE_METHODS)}")
    return Capture(method=parts["method"], channel=parts.get("channel"), operator=parts.get("operator"),
                   document_ref=parts.get("document"))


def _organisations(references: Any, pointer: str, registry: PolicyRegistry) -> frozenset[str]:
    organisations = frozenset(r.identifier.value for r in references or []
                              if r.identifier and r.identifier.system == ORGANISATION_SYSTEM and r.identifier.value)
    if organisations - set(registry.partners):
        raise _problem(pointer, "code-list", "names an organisation that is not a partner")
    return organisations


def _text(concept: Any) -> str | None:
    if concept is None:
        return None
    codings = concept.coding or []
    return concept.text or (codings[0].code if codings else None)


def _aware(value: Any) -> datetime:
    """A FHIR dateTime as an aware datetime; partial dates ("2026", "2026-01") start at their first day."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if hasattr(value, "day"):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    parts = [int(p) for p in str(value).split("-")[:2]]
    return datetime(parts[0], parts[1] if len(parts) > 1 else 1, 1, tzinfo=UTC)


def _date(value: Any) -> date | None:
    if value is None:
        return None
    return value if isinstance(value, date) else _aware(value).date()


# --- produced: FHIR R4 -------------------------------------------------------------------------------------

def _coding(system: str, code: str) -> dict[str, str]:
    return {"system": system, "code": code}


def _period(start: datetime | None, end: datetime | None) -> dict[str, str] | None:
    period = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
    return period or None


def _provision_r4(p: Provision, kind: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind} if kind else {}
    out |= {
        "purpose": [_coding(PURPOSE_SYSTEM, c) for c in sorted(p.purposes)],
        "actor": [{"role": {"coding": [_coding(*RECIPIENT_ROLE)]},
                   "reference": {"identifier": {"system": ORGANISATION_SYSTEM, "value": r}}}
                  for r in sorted(p.recipients)],
        "action": [{"coding": [_coding(ACTION_SYSTEM, a)]} for a in sorted(p.actions)],
        "class": [_coding(MESSAGE_TYPE_SYSTEM, c) for c in sorted(p.data_classes)],
        "securityLabel": [_coding(LABEL_SYSTEM, s) for s in sorted(p.security_labels)],
        "period": _period(p.period_start, p.period_end),
        "dataPeriod": _period(p.data_period_start, p.data_period_end),
    }
    return {k: v for k, v in out.items() if v}


POLICY_RULE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
POLICY_RULE_CODES = frozenset({"OPTIN", "OPTINR", "OPTOUT", "OPTOUTE"})
"""HL7 consent directive codes (v3-ActCode) a Consent's ``policyRule`` may carry: returned as the coding they
came as, not as bare text."""


def _policy_rule(legal_basis: str | None) -> dict[str, Any] | None:
    if not legal_basis:
        return None
    if legal_basis in POLICY_RULE_CODES:
        return {"coding": [_coding(POLICY_RULE_SYSTEM, legal_basis)]}
    return {"text": legal_basis}


def _complex(name: str, parts: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    return {"url": EXTENSION_BASE + name,
            "extension": [{"url": url, kind: value} for url, (kind, value) in parts.items() if value]}


def to_fhir_r4(record: ConsentRecord) -> dict[str, Any]:
    """One consent version as a FHIR R4 Consent (validated with fhir.resources' R4B model before it leaves).

    The person is named by pseudonym; ``meta.versionId`` is the version of the lineage."""
    extensions: list[dict[str, Any]] = [{"url": EXTENSION_BASE + "consent-type", "valueCode": record.consent_type}]
    if record.notice:
        n = record.notice
        extensions.append(_complex("notice", {"url": ("valueUri", n.uri), "version": ("valueString", n.version),
                                              "textHash": ("valueString", n.text_hash),
                                              "language": ("valueCode", n.language)}))
    if record.capture:
        c = record.capture
        extensions.append(_complex("capture", {"method": ("valueCode", c.method), "channel": ("valueString", c.channel),
                                               "operator": ("valueString", c.operator),
                                               "document": ("valueString", c.document_ref)}))
    if record.review_date:
        extensions.append({"url": EXTENSION_BASE + "review-date", "valueDate": record.review_date.isoformat()})
    extensions += [{"url": EXTENSION_BASE + "obligation", "valueCode": o} for o in sorted(record.obligations)]
    extensions += [{"url": EXTENSION_BASE + "refrain", "valueCode": r} for r in sorted(record.refrains)]
    if record.withdrawal:
        w = record.withdrawal
        extensions.append(_complex("withdrawal", {"at": ("valueString", w.at.isoformat()), "by": ("valueCode", w.by),
                                                  "channel": ("valueString", w.channel),
                                                  "evidence": ("valueString", w.evidence)}))
    document: dict[str, Any] = {
        "resourceType": "Consent", "id": record.consent_id, "meta": {"versionId": str(record.version)},
        "text": generated_narrative("Consenso (Consent)", [
            ("stato", _R4_STATUS[record.status]), ("decisione", record.decision),
            ("tipo", record.consent_type), ("finalità", ", ".join(sorted(record.base.purposes))),
            ("destinatari", ", ".join(sorted(record.base.recipients))),
        ]),
        "extension": extensions, "status": _R4_STATUS[record.status],
        "scope": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")]},
        "category": [{"coding": [_coding("http://loinc.org", "59284-0")]}],
        "patient": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": record.subject_pseudonym}},
        "organization": [{"identifier": {"system": ORGANISATION_SYSTEM, "value": o}}
                         for o in sorted(record.controllers)] or None,
        "policyRule": _policy_rule(record.legal_basis),
        "provision": _provision_r4(record.base, record.decision) | {
            "period": _period(record.period_start, record.period_end),
            "provision": [_provision_r4(p, "deny" if record.decision == "permit" else "permit")
                          for p in record.provisions],
        },
    }
    if record.recorded_at:
        document["dateTime"] = record.recorded_at.isoformat()
    if record.grantor.role != "subject":
        document["performer"] = [{"type": "RelatedPerson", "extension": [
            {"url": EXTENSION_BASE + "grantor-role", "valueCode": record.grantor.role},
            *([{"url": EXTENSION_BASE + "grantor-evidence", "valueString": record.grantor.evidence}]
              if record.grantor.evidence else []),
        ]}]
    document["provision"] = {k: v for k, v in document["provision"].items() if v}
    document = {k: v for k, v in document.items() if v is not None}
    ConsentR4.model_validate(document)
    return document
