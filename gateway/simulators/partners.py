"""Native partner messages built from synthetic tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from adapters.aler.simulator import aler_arrears_message
from gateway.consents.fhir import EXTENSION_BASE, ORGANISATION_SYSTEM, PURPOSE_SYSTEM
from gateway.policy.registry import PolicyRegistry, load_registry

__all__ = ["NOTICE_FOR_PURPOSE", "aler_arrears_message", "fhir_consent", "notice_extension"]

NOTICE_FOR_PURPOSE = {
    "microcredit-assessment": "https://gateway.quartieri.example/notices/microcredito",
    "care-coordination": "https://gateway.quartieri.example/notices/cura-domiciliare",
    "anti-violence-support": "https://gateway.quartieri.example/notices/antiviolenza",
}
"""The privacy notice an operator shows before capturing consent for a purpose (gateway/registry/notices.yaml)."""


@cache
def _registry() -> PolicyRegistry:
    return load_registry()


def notice_extension(uri: str, version: str = "2026.1", text_hash: str | None = None) -> dict[str, Any]:
    """The gateway's ``notice`` extension: which notice version the person was shown, and the hash of its text
    (taken from the notice on record unless given)."""
    if text_hash is None:
        notice = _registry().notice(uri, version)
        assert notice is not None, f"no notice {uri} {version} on record"
        text_hash = notice.text_hash
    return {"url": EXTENSION_BASE + "notice", "extension": [
        {"url": "url", "valueUri": uri}, {"url": "version", "valueString": version},
        {"url": "textHash", "valueString": text_hash}, {"url": "language", "valueCode": "it"}]}


def fhir_consent(cf: str, *, purposes: tuple[str, ...] = ("microcredit-assessment",),
                 recipients: tuple[str, ...] = ("fwa",), decision: str = "permit", status: str = "active",
                 start: datetime | None = None, days: int = 365,
                 cf_system: str = "http://hl7.it/sid/codiceFiscale", consent_type: str = "express",
                 security_labels: tuple[str, ...] = (), notice: dict[str, Any] | None = None,
                 nested: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """A FHIR R4 Consent as an operator captures it on the person's behalf at a C.A.S.A. centre, with the
    notice shown (by default the current one for the first purpose) and assisted-capture evidence."""
    begin = start or datetime.now(UTC) - timedelta(days=1)
    shown = notice or notice_extension(NOTICE_FOR_PURPOSE.get(purposes[0] if purposes else "",
                                                               NOTICE_FOR_PURPOSE["microcredit-assessment"]))
    provision: dict[str, Any] = {
        "type": decision,
        "period": {"start": begin.isoformat(), "end": (begin + timedelta(days=days)).isoformat()},
        "purpose": [{"system": PURPOSE_SYSTEM, "code": p} for p in purposes],
        "actor": [
            {
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                     "code": "IRCP"}]},
                "reference": {"identifier": {"system": ORGANISATION_SYSTEM, "value": r}},
            }
            for r in recipients
        ],
    }
    if security_labels:
        provision["securityLabel"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": label}
                                      for label in security_labels]
    if nested:
        provision["provision"] = list(nested)
    return {
        "resourceType": "Consent",
        "extension": [
            {"url": EXTENSION_BASE + "consent-type", "valueCode": consent_type},
            shown,
            {"url": EXTENSION_BASE + "capture", "extension": [
                {"url": "method", "valueCode": "assisted"}, {"url": "channel", "valueString": "casa-centre"},
                {"url": "operator", "valueString": "op-7f3a"}, {"url": "document", "valueString": "MOD-CONS-0001"}]},
        ],
        "status": status,
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": cf_system, "value": cf}},
        "dateTime": begin.isoformat(),
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": provision,
    }
