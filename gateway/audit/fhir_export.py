"""Export of audit records as FHIR R4 AuditEvent resources, following IHE BALP where it fits.

Patterns used (IHE Basic Audit Log Patterns, profiles.ihe.net/ITI/BALP):

* ``decision`` and ``delivery-dropped``: an authorization decision (``IHE.BasicAudit.AuthZconsent``): type
  DICOM 110113 *Security Alert*, subtype ``AuthZ-Consent`` (``AuthZ-Role`` when no consent was involved),
  action E, the gateway as the authorization server agent and as the source (security server).
* ``disclosure``: a privacy disclosure at the source (``IHE.BasicAudit.PrivacyDisclosure.Source``): type
  DICOM 110106 *Export*, subtype ISO 21089 ``disclose``, action R, source and destination role agents.
* ``consent-change``: a RESTful create (recording) or update (withdrawal) of a Consent.
* ``privacy-query``: a RESTful read by a privacy officer, purpose HCOMPL.
* ``erasure``: a subject crypto-shredded (GDPR art. 17): type DICOM 110110 *Patient Record*, subtype ISO 21089
  ``destroy``, action D; no subject entity (the record names no one), the counts of what went as details.
* ``retention``: expired payloads purged (D-08): type DICOM 110100 *Application Activity*, subtype ISO 21089
  ``destroy``, action D, the counts per flow as details.

The subject appears only as an opaque identifier (the keyed audit reference): no name, no codice fiscale.
Outcome: success and permit are ``0``; a denial is ``4`` (R4: a failure of the kind an HTTP 4xx answer
reports) with the reason class in ``outcomeDesc``; failure is ``8``. The record's place in the tamper-evident
log (index, leaf hash, previous chain hash) travels as an entity, so a reader can ask for its inclusion proof.
Every resource is validated by building the ``fhir.resources`` R4B model before it is returned.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson
from fhir.resources.R4B.auditevent import AuditEvent

from adapters.fhir_narrative import generated_narrative
from gateway.audit.canonical import canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.policy.registry import load_registry

__all__ = [
    "ACT_CODE_POLICIES",
    "AUDIT_LOG_INDEX_SYSTEM",
    "CLIENT_SYSTEM",
    "CONSENT_SYSTEM",
    "DECISION_SYSTEM",
    "INSTANCE_SYSTEM",
    "MESSAGE_SYSTEM",
    "SECURITY_LABEL_SYSTEM",
    "SUBJECT_REF_SYSTEM",
    "to_fhir_audit_event",
]

_BASE = "https://gateway.quartieri.example/fhir"
SUBJECT_REF_SYSTEM = f"{_BASE}/sid/audit-subject-ref"
"""Keyed per-subject audit reference: opaque, and resolves to no one once the subject's key is erased."""
CLIENT_SYSTEM = f"{_BASE}/sid/client-id"
ORGANISATION_SYSTEM = f"{_BASE}/sid/organisation"
INSTANCE_SYSTEM = f"{_BASE}/sid/gateway-instance"
CONSENT_SYSTEM = f"{_BASE}/sid/consent-version"
"""``<consent id>@<version>``."""
MESSAGE_SYSTEM = f"{_BASE}/sid/message-id"
DECISION_SYSTEM = f"{_BASE}/sid/decision-id"
CORRELATION_SYSTEM = f"{_BASE}/sid/correlation-id"
KAFKA_SYSTEM = f"{_BASE}/sid/kafka-record"
"""``<topic>/<partition>/<offset>`` of the Kafka record the decision was made on."""
AUDIT_LOG_INDEX_SYSTEM = f"{_BASE}/sid/audit-log-index"
PURPOSE_SYSTEM = f"{_BASE}/CodeSystem/purpose"
SENSITIVITY_SYSTEM = f"{_BASE}/CodeSystem/sensitivity"

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_BALP_PROFILE = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
_AUTHZ_SUBTYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
_BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
_LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_RESTFUL = "http://hl7.org/fhir/restful-interaction"
_PURPOSE_OF_USE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
REDACTED_PREFIX = "REDACTED:"
"""Labels of elements removed from a disclosure (rule 7): exported as ``redacted-label`` details, not as
security labels of what left."""

SECURITY_LABEL_SYSTEM = f"{_BASE}/CodeSystem/security-label"
"""The gateway's own security labels, those HL7 has no code for (``EMERGENCY``: the decision of a flow that may
override consent, F10)."""

_CONFIDENTIALITY_CODES = frozenset({"U", "L", "M", "N", "R", "V"})
_ACT_CODE_LABELS = frozenset({"SDV", "PSY", "MH", "HIV", "ETH", "LIVARG"})
ACT_CODE_POLICIES = frozenset({
    "AUTH", "CPLYCC", "CPLYCD", "CPLYJPP", "CPLYOSP", "CPLYPOL", "DECLASSIFYLABEL", "DEID", "DELAU", "ENCRYPT",
    "ENCRYPTR", "ENCRYPTT", "ENCRYPTU", "HUAPRV", "LABEL", "MASK", "MINEC", "PERSISTLABEL", "PRIVMARK", "PSEUD",
    "REDACT", "NOAUTH", "NOCOLLECT", "NODSCLCD", "NODSCLCDS", "NOINTEGRATE", "NOLIST", "NOMOU", "NOORGPOL",
    "NOPAT", "NOPERSISTP", "NORDSCLCD", "NORDSCLCDS", "NORDSCLW", "NORELINK", "NOREUSE", "NOVIP", "ORCON",
})
"""HL7 v3-ActCode obligation and refrain policy codes (ObligationPolicy, RefrainPolicy) exported as they are;
any other label is the gateway's own (:data:`SECURITY_LABEL_SYSTEM`), never a made-up v3-ActCode."""
_OUTCOMES = {"permit": "0", "success": "0", "deny": "4", "failure": "8"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _identified(system: str, value: str, display: str | None = None) -> dict[str, Any]:
    reference: dict[str, Any] = {"identifier": {"system": system, "value": value}}
    if display:
        reference["display"] = display
    return reference


@functools.cache
def _packaged_purposes() -> dict[str, str | None]:
    return {code: purpose.v3 for code, purpose in load_registry().purposes.items()}


def _event_kind(record: Mapping[str, Any]) -> tuple[dict[str, str], list[dict[str, str]], str, str | None]:
    """Type, subtypes, action and BALP profile of the record's event."""
    event_type = record.get("event_type")
    if event_type in ("decision", "delivery-dropped"):
        subtype = (
            _coding(_AUTHZ_SUBTYPE, "AuthZ-Consent", "Authorization Decision using Roles and Consent")
            if record.get("consent_ref") or event_type == "delivery-dropped"
            else _coding(_AUTHZ_SUBTYPE, "AuthZ-Role", "Authorization Decision using only Roles")
        )
        return _coding(_DCM, "110113", "Security Alert"), [subtype], "E", "IHE.BasicAudit.AuthZconsent"
    if event_type == "disclosure":
        return (
            _coding(_DCM, "110106", "Export"),
            [_coding(_LIFECYCLE, "disclose", "Disclose Record Lifecycle Event")],
            "R",
            "IHE.BasicAudit.PrivacyDisclosure.Source",
        )
    if event_type == "consent-change":
        interaction = "update" if record.get("action") == "withdraw-consent" else "create"
        return (
            _coding(_EVENT_TYPE, "rest", "RESTful Operation"),
            [_coding(_RESTFUL, interaction)],
            "U" if interaction == "update" else "C",
            None,
        )
    if event_type == "privacy-query":
        return _coding(_EVENT_TYPE, "rest", "RESTful Operation"), [_coding(_RESTFUL, "read")], "R", None
    if event_type in ("erasure", "retention"):
        kind = (_coding(_DCM, "110110", "Patient Record") if event_type == "erasure"
                else _coding(_DCM, "110100", "Application Activity"))
        return kind, [_coding(_LIFECYCLE, "destroy", "Destroy/Delete Record Lifecycle Event")], "D", None
    if event_type == "token-issued":
        return _coding(_DCM, "110114", "User Authentication"), [_coding(_DCM, "110122", "Login")], "E", None
    if event_type == "console-session":
        login = str(record.get("action")).startswith("sign-in")
        return (_coding(_DCM, "110114", "User Authentication"),
                [_coding(_DCM, "110122", "Login") if login else _coding(_DCM, "110123", "Logout")], "E", None)
    if event_type == "dead-letter-replay":
        return _coding(_DCM, "110100", "Application Activity"), [_coding(_RESTFUL, "operation")], "E", None
    raise ValueError(f"unknown audit event type {event_type!r}")


def _purposes(record: Mapping[str, Any], v3: Mapping[str, str | None]) -> list[dict[str, Any]]:
    concepts: list[dict[str, Any]] = []
    for code in filter(None, (p.strip() for p in str(record.get("purpose") or "").split(","))):
        codings = [_coding(PURPOSE_SYSTEM, code)]
        if v3.get(code):
            codings.insert(0, _coding(_PURPOSE_OF_USE, str(v3[code])))
        concepts.append({"coding": codings})
    return concepts


def _label(code: str) -> dict[str, str]:
    if code in _CONFIDENTIALITY_CODES:
        return _coding(_CONFIDENTIALITY, code)
    if code in _ACT_CODE_LABELS:
        return _coding(_ACT_CODE, code)
    if code.startswith("S") and code[1:].isdigit():
        return _coding(SENSITIVITY_SYSTEM, code)
    if code in ACT_CODE_POLICIES:  # obligations and refrains: PSEUD, NOREUSE, NORDSCLCD, ...
        return _coding(_ACT_CODE, code)
    return _coding(SECURITY_LABEL_SYSTEM, code)


def _agents(record: Mapping[str, Any], purpose_of_use: list[dict[str, Any]]) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    client_id = record.get("client_id")
    requesting = record.get("requesting_org")
    source = record.get("source_org")
    if client_id:
        client: dict[str, Any] = {
            "type": {"coding": [_coding(_DCM, "110150", "Application")]},
            "who": _identified(CLIENT_SYSTEM, str(client_id)),
            "requestor": True,
        }
        if record.get("token_id"):
            client["policy"] = [str(record["token_id"])]  # BALP: the access token's jti
        if purpose_of_use:
            client["purposeOfUse"] = purpose_of_use
        agents.append(client)
    if requesting:
        agents.append({
            "type": {"coding": [_coding(_DCM, "110153", "Source Role ID")] if requesting == source
                     else [_coding(_PARTICIPATION, "AUT", "author (originator)")]},
            "who": _identified(ORGANISATION_SYSTEM, str(requesting)),
            "requestor": not client_id,
        })
    if source and source != requesting:
        agents.append({
            "type": {"coding": [_coding(_DCM, "110153", "Source Role ID")]},
            "who": _identified(ORGANISATION_SYSTEM, str(source)),
            "requestor": False,
        })
    if record.get("recipient_org"):
        agents.append({
            "type": {"coding": [_coding(_DCM, "110152", "Destination Role ID")]},
            "who": _identified(ORGANISATION_SYSTEM, str(record["recipient_org"])),
            "requestor": False,
        })
    authorising = record.get("event_type") in ("decision", "delivery-dropped")
    agents.append({
        "type": {"coding": [_coding(_SECURITY_ROLE, "authserver", "authorization server") if authorising
                            else _coding(_PARTICIPATION, "CST", "custodian")]},
        "who": _identified(INSTANCE_SYSTEM, str(record["instance"])),
        "requestor": not any(a["requestor"] for a in agents),  # the gateway acted on its own (a drop at delivery)
    })
    return agents


def _detail(kind: str, value: object) -> dict[str, str]:
    return {"type": kind, "valueString": str(value)}


def _entities(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if record.get("subject_ref"):
        entities.append({
            "what": _identified(SUBJECT_REF_SYSTEM, str(record["subject_ref"])),
            "type": _coding(_ENTITY_TYPE, "1", "Person"),
            "role": _coding(_OBJECT_ROLE, "1", "Patient"),
        })
    if record.get("consent_ref"):
        consent: dict[str, Any] = {
            "what": _identified(CONSENT_SYSTEM, str(record["consent_ref"])),
            "type": _coding(_RESOURCE_TYPES, "Consent"),
            "role": _coding(_OBJECT_ROLE, "13", "Security Resource"),
        }
        if record.get("consent_hash"):
            consent["detail"] = [_detail("consent-hash", str(record["consent_hash"]))]
        entities.append(consent)
    message_ids = [str(m) for m in record.get("message_ids") or ()]
    codes = [str(code) for code in (*(record.get("labels") or ()), *(record.get("obligations") or ()))]
    labels = [_label(code) for code in codes if not code.startswith(REDACTED_PREFIX)]
    categories = [_detail("data-category", c) for c in record.get("data_categories") or ()]
    categories += [_detail("redacted-label", c.removeprefix(REDACTED_PREFIX)) for c in codes
                   if c.startswith(REDACTED_PREFIX)]
    for position, message_id in enumerate(message_ids):
        entity: dict[str, Any] = {
            "what": _identified(MESSAGE_SYSTEM, message_id),
            "type": _coding(_ENTITY_TYPE, "2", "System Object"),
            "role": _coding(_OBJECT_ROLE, "4", "Domain Resource"),
        }
        if position == len(message_ids) - 1:  # the message that left (or would have left) the gateway
            if labels:
                entity["securityLabel"] = labels
            if categories:
                entity["detail"] = categories
        entities.append(entity)
    decision_details = [
        _detail(name.replace("_", "-"), record[name])
        for name in ("flow_id", "legal_basis", "reason", "policy_revision", "combining_rule", "matched_provision")
        if record.get(name)
    ]
    if record.get("decision_id") or decision_details:
        decision: dict[str, Any] = {"type": _coding(_ENTITY_TYPE, "4", "Other"), "description": "policy decision"}
        if record.get("decision_id"):
            decision["what"] = _identified(DECISION_SYSTEM, str(record["decision_id"]))
        if decision_details:
            decision["detail"] = decision_details
        entities.append(decision)
    if record.get("request_id"):
        entities.append({
            "what": {"identifier": {"value": str(record["request_id"])}},
            "type": _coding(_BALP_ENTITY_TYPE, "XrequestId"),
        })
    if record.get("correlation_id"):
        entities.append({
            "what": _identified(CORRELATION_SYSTEM, str(record["correlation_id"])),
            "type": _coding(_ENTITY_TYPE, "4", "Other"),
            "description": "correlation id",
        })
    if record.get("queried_ref"):
        entities.append({
            "what": {"identifier": {"value": str(record["queried_ref"])}},
            "type": _coding(_ENTITY_TYPE, "2", "System Object"),
            "role": _coding(_OBJECT_ROLE, "24", "Query"),
            "description": "what the privacy officer read",
        })
    counts = record.get("counts")
    if isinstance(counts, Mapping) and counts:
        entities.append({
            "type": _coding(_ENTITY_TYPE, "4", "Other"),
            "description": "rows removed" if record.get("event_type") == "erasure" else "rows purged, per flow",
            "detail": [_detail(str(name), count) for name, count in sorted(counts.items())],
        })
    kafka = record.get("kafka")
    if isinstance(kafka, Mapping):
        entities.append({
            "what": _identified(KAFKA_SYSTEM, f"{kafka['topic']}/{kafka['partition']}/{kafka['offset']}"),
            "type": _coding(_ENTITY_TYPE, "2", "System Object"),
            "description": "Kafka record",
        })
    if "log_index" in record:
        details = [_detail("leaf-hash", leaf_hash(canonical_json(dict(record))).hex())]
        if record.get("prev_chain_hash"):
            details.append(_detail("prev-chain-hash", record["prev_chain_hash"]))
        entities.append({
            "what": _identified(AUDIT_LOG_INDEX_SYSTEM, str(record["log_index"])),
            "type": _coding(_ENTITY_TYPE, "4", "Other"),
            "role": _coding(_OBJECT_ROLE, "17", "Data Repository"),
            "description": "position in the tamper-evident audit log (RFC 6962 leaf)",
            "detail": details,
        })
    return entities


def to_fhir_audit_event(record_json: Mapping[str, Any], *, purposes: Mapping[str, str | None] | None = None,
                        site: str = "quartieri-gateway") -> dict[str, Any]:
    """The FHIR R4 AuditEvent (JSON) of one stored audit record (its parsed canonical JSON).

    ``purposes`` maps the gateway's purpose codes to HL7 v3 PurposeOfUse codes (the packaged purpose
    vocabulary by default). Raises ``ValueError`` for an unknown event type, and the model's validation error
    if the resource would not be a valid R4 AuditEvent.
    """
    record = dict(record_json)
    event_type, subtypes, action, profile = _event_kind(record)
    purpose_of_event = _purposes(record, _packaged_purposes() if purposes is None else purposes)
    outcome = _OUTCOMES.get(str(record.get("outcome")), "8")
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": event_type,
        "subtype": subtypes,
        "action": action,
        "period": {"start": record["occurred_at"], "end": record["occurred_at"]},
        "recorded": record.get("recorded_at") or record["occurred_at"],
        "outcome": outcome,
        "agent": _agents(record, purpose_of_event),
        "source": {
            "site": site,
            "observer": _identified(INSTANCE_SYSTEM, str(record["instance"]), str(record["instance"])),
            "type": [_coding(_SOURCE_TYPE, "6", "Security Server")
                     if record.get("event_type") in ("decision", "delivery-dropped")
                     else _coding(_SOURCE_TYPE, "4", "Application Server")],
        },
    }
    if record.get("record_id"):
        resource["id"] = str(record["record_id"])
    if profile:
        resource["meta"] = {"profile": [_BALP_PROFILE + profile]}
    if record.get("reason"):
        resource["outcomeDesc"] = str(record["reason"])
    if purpose_of_event:
        resource["purposeOfEvent"] = purpose_of_event
    entities = _entities(record)
    if entities:
        resource["entity"] = entities
    resource["text"] = generated_narrative("Evento di audit (AuditEvent)", [
        ("evento", str(record.get("event_type"))),
        ("flusso", str(record["flow_id"]) if record.get("flow_id") else None),
        ("esito", str(record.get("outcome")) if record.get("outcome") else None),
        ("motivo", str(record["reason"]) if record.get("reason") else None),
    ])
    model = AuditEvent.model_validate(resource)
    exported: dict[str, Any] = orjson.loads(model.model_dump_json())
    return exported
