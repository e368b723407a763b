"""The AsyncAPI 3.0 document of the gateway's Kafka topics, generated from the routing tables and the registry.

Every topic :meth:`gateway.bootstrap.Gateway.topics` creates (with the default, empty prefix) is a channel:

* ``in.<partner>``: what the partner produces in its own format, for every partner the gateway has a decoder
  for (:data:`gateway.routing.DECODERS`); the native formats are those of
  :data:`gateway.contracts.formats.INBOUND_FORMATS`, ASST's FHIR R4 resources
  (:data:`gateway.contracts.formats.FHIR_INBOUND_FORMATS`, one message per resource type) and ALER's CSV tenancy
  export (a text payload; the schema of one row is published apart, :data:`gateway.contracts.formats.CSV_ROW_FORMATS`).
* ``out.<recipient>`` and ``s4.out.<recipient>``: per declared flow, the recipient's native format where an
  encoder exists (:data:`gateway.routing.ENCODERS`), the canonical envelope with its disclosure labels
  otherwise; ``out.`` also carries the restriction notices of a consent withdrawal (GDPR art. 19) and, for the
  statistics flows, the aggregates the gateway publishes (:class:`schemas.statistics.StatisticsAggregate`, no
  envelope: an aggregate has no subject).
* ``status.<partner>``, ``dlq.<partner>`` and ``gateway.consent-events``: the gateway's own bodies, described by
  the small models of this module.

Message schemas are the pydantic JSON Schemas the published contracts come from. Their ``$defs`` are hoisted
into ``components.schemas`` (identical definitions become one; a name with several variants is prefixed with
the first model that has each) and every reference points into the document, so the document is
self-contained. :func:`validate_against_channel` checks a message read from a topic against its channel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final, Literal

import referencing
from pydantic import BaseModel, ConfigDict, Field
from referencing.jsonschema import DRAFT202012

import adapters.aler
import adapters.aler.csv_export
import adapters.asst_fhir
import adapters.asst_fhir.contract
from gateway.contracts.formats import (
    FHIR_INBOUND_FORMATS,
    FHIR_OUTBOUND_FORMATS,
    INBOUND_FORMATS,
    NATIVE_OUTBOUND,
    OUTBOUND_FORMATS,
    SCHEMA_BASE,
)
from gateway.partners import PARTNERS
from gateway.policy.registry import Flow, LifecycleState, PolicyRegistry
from gateway.routing import DECODERS, ENCODERS
from gateway.settings import GatewaySettings, TopicSettings
from schemas.envelope import Envelope
from schemas.messages import MESSAGE_TYPES
from schemas.statistics import STATISTICS_MESSAGE_TYPES

__all__ = [
    "ASYNCAPI_VERSION",
    "FHIR_INBOUND_RESOURCES",
    "NATIVE_OUTBOUND",
    "CanonicalDelivery",
    "ConsentWithdrawnEvent",
    "DeadLetterEntry",
    "DeliveryLabels",
    "RestrictionNotice",
    "StatusMessage",
    "asyncapi_document",
    "channel_id",
    "topic_names",
    "validate_against_channel",
]

ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
FHIR_R4: Final = "https://hl7.org/fhir/R4/"
FHIR_INBOUND_RESOURCES: Final = ("Encounter", "Immunization", "ServiceRequest", "Consent", "Bundle")
"""What ASST may produce to ``in.asst``: the resources its adapter translates, alone or in a Bundle."""

# --------------------------------------------------------------------------------------------------------------
# Bodies the gateway itself writes (no partner format describes them)


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StatusMessage(_Body):
    """A status on ``status.<sender>``: what happened to a message the partner sent (rule 13: a reason class,
    never the reason behind a consent denial)."""

    message_type: Literal["referral.status"]
    message_id: str = Field(description="the sender's id of the message this status is about")
    correlation_id: str
    state: Literal["received", "forwarded", "denied", "rejected", "dropped"]
    reason_class: str | None = Field(description="why nothing was forwarded, as the sender may be told")
    recipients: list[str] = Field(description="organisations the message was forwarded to")
    lifecycle: LifecycleState | None = Field(
        default=None, description="what the recipient reported since about the referral"
    )
    at: datetime


class FieldProblemBody(_Body):
    """One problem in a dead-lettered message, located by JSON pointer; never the offending value."""

    pointer: str
    rule: str
    message: str


class RecordCoordinates(_Body):
    """Where the dead-lettered record is: a copy of the payload is never kept."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class DeadLetterEntry(_Body):
    """An entry on ``dlq.<partner>``: a record of ``in.<partner>`` that could not be accepted."""

    reason: str = Field(description="problem type slug, e.g. contract-violation or malformed-message")
    title: str
    detail: str
    problems: list[FieldProblemBody]
    source: RecordCoordinates
    message_id: str | None = Field(description="the record's message-id header, when it had one")
    request_id: str
    at: datetime


class ConsentWithdrawnEvent(_Body):
    """An event on ``gateway.consent-events``: a consent was withdrawn (rule 10)."""

    event: Literal["consent.withdrawn"]
    consent_ref: str
    withdrawn_at: datetime
    purposes: list[str]
    recipients: list[str]


class RestrictionNotice(_Body):
    """A notice on ``out.<recipient>`` after a withdrawal: stop processing what was received under the
    consent (GDPR art. 7(3) and 19); acknowledged over HTTP."""

    message_type: Literal["consent.restriction-notice"]
    notice_id: str
    consent_ref: str
    withdrawn_at: datetime
    legal_reference: str
    action: str
    disclosures: list[str] = Field(description="message ids of the disclosures made under the consent")
    acknowledge: str = Field(description="the HTTP request that acknowledges the notice")


class DeliveryLabels(_Body):
    """What travels with a disclosure besides the payload (rule 8)."""

    consent_ref: str | None
    obligations: list[str]
    refrains: list[str]


class CanonicalDelivery(Envelope):
    """A minimised canonical envelope with its labels: what a recipient without a native format receives."""

    labels: DeliveryLabels


# --------------------------------------------------------------------------------------------------------------
# Topics and channels


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


# --------------------------------------------------------------------------------------------------------------
# Schemas: collected with their $defs, then hoisted into components.schemas


def _walk_refs(node: Any, rewrite: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {k: rewrite(v) if k == "$ref" and isinstance(v, str) else _walk_refs(v, rewrite)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_refs(v, rewrite) for v in node]
    return node


def _signature(owner: str, name: str, schema: dict[str, Any], label: Mapping[tuple[str, str], int]) -> str:
    """A definition's name and body, its references replaced by the groups of what they refer to."""

    def group(ref: str) -> str:
        if ref.startswith("#/$defs/"):
            return f"@{label[(owner, ref.removeprefix('#/$defs/'))]}"
        return ref

    return name + json.dumps(_walk_refs(schema, group), sort_keys=True)


class _Schemas:
    """components.schemas under construction."""

    def __init__(self) -> None:
        self._roots: dict[str, dict[str, Any]] = {}

    def add(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        """Register ``schema`` (possibly with ``$defs``) as ``name``; returns a reference to it."""
        if name in self._roots and self._roots[name] != schema:
            raise ValueError(f"two different schemas are called {name}")
        self._roots[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def model(self, name: str, model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, str]:
        return self.add(name, model.model_json_schema(mode=mode))

    def build(self) -> dict[str, Any]:
        """Every schema, with the definitions of all hoisted; references rewritten to point at them."""
        defs = {owner: dict(schema.get("$defs", {})) for owner, schema in self._roots.items()}
        nodes = [(owner, name) for owner, owned in defs.items() for name in owned]
        # Partition refinement: two definitions are the same when their names, bodies and everything they
        # refer to are; identical ones become one component.
        label = {node: 0 for node in nodes}
        groups = 1 if nodes else 0
        while True:
            signature = {(owner, name): _signature(owner, name, defs[owner][name], label) for owner, name in nodes}
            ids = {sig: i for i, sig in enumerate(sorted(set(signature.values())))}
            label = {node: ids[signature[node]] for node in nodes}
            if len(ids) == groups:
                break
            groups = len(ids)
        variants: dict[str, list[int]] = {}
        first_owner: dict[int, str] = {}
        for owner, name in nodes:
            group = label[(owner, name)]
            first_owner.setdefault(group, owner)
            if group not in variants.setdefault(name, []):
                variants[name].append(group)

        def component(owner: str, def_name: str) -> str:
            if len(variants[def_name]) == 1:
                return def_name
            return f"{first_owner[label[(owner, def_name)]]}.{def_name}"

        result: dict[str, Any] = {}

        def put(name: str, owner: str, schema: dict[str, Any]) -> None:
            def rewrite(ref: str) -> str:
                if ref.startswith("#/$defs/"):
                    return f"#/components/schemas/{component(owner, ref.removeprefix('#/$defs/'))}"
                return ref

            body = _walk_refs({k: v for k, v in schema.items() if k != "$defs"}, rewrite)
            if name in result and result[name] != body:
                raise ValueError(f"schema name {name} is used twice")
            result[name] = body

        for owner, schema in self._roots.items():
            put(owner, owner, schema)
            for def_name, definition in defs[owner].items():
                put(component(owner, def_name), owner, definition)
        return dict(sorted(result.items()))


# --------------------------------------------------------------------------------------------------------------
# Headers, keys and messages

_STRING: Final[dict[str, Any]] = {"type": "string", "minLength": 1}
_HEADER_DESCRIPTIONS: Final = {
    "message-id": "Id of this message (the gateway's id for what it sends)",
    "correlation-id": "Ties a referral to every status and outcome that follows it, across partners",
    "request-id": "Id of the request or record that caused this message, for tracing",
    "message-type": "Canonical message type of the message",
    "schema-version": "Version of the canonical message type",
    "purpose": "Purpose the data crosses for (purpose vocabulary of the flow registry)",
    "content-type": "Media type of the value",
    "reason": "Problem type slug of the dead-lettered record",
    "traceparent": "W3C Trace Context traceparent: from a partner, the trace the gateway's trace of this message "
                   "continues; from the gateway (when it traces), its trace of the message this one came from, for "
                   "the recipient's trace to continue",
}


def _headers(required: Iterable[str], optional: Iterable[str] = (), *, message_type: str | None = None,
             purposes: Iterable[str] = (), content_types: Iterable[str] = ()) -> dict[str, Any]:
    """Schema of the Kafka headers of a message (every header value is a UTF-8 string)."""
    required = list(required)
    properties: dict[str, Any] = {}
    for name in [*required, *optional]:
        schema: dict[str, Any] = {"type": "string", "description": _HEADER_DESCRIPTIONS[name]}
        if name in ("message-id", "correlation-id", "message-type"):
            schema.update(_STRING)
        if name == "request-id":
            schema["maxLength"] = 64
        if name == "schema-version":
            schema["pattern"] = r"^\d+\.\d+$"
        if name == "traceparent":
            schema["pattern"] = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
        if name == "message-type" and message_type is not None:
            schema["const"] = message_type
        if name == "purpose" and purposes:
            schema["enum"] = sorted(set(purposes))
        if name == "content-type" and content_types:
            schema["examples"] = list(content_types)
        properties[name] = schema
    return {"type": "object", "required": required, "properties": properties}


_GATEWAY_HEADERS: Final = ("message-id", "correlation-id", "request-id", "message-type", "schema-version")

_AT_LEAST_ONCE: Final = (
    "Delivery is at least once: after a crash or a broker fault the gateway sends again what it cannot prove was "
    "acknowledged, so a consumer may read the same message more than once. A repeat always carries the same "
    "message-id header: deduplicate by message-id (dead-letter entries, which have none, by their source topic, "
    "partition and offset)."
)
"""What every consumer of the gateway's topics must know; repeated on each channel the gateway writes."""
_DEDUPLICATE: Final = " Delivered at least once: deduplicate by the message-id header."


def _key(description: str) -> dict[str, Any]:
    return {"kafka": {"key": {"type": "string", "description": description}, "bindingVersion": KAFKA_BINDING_VERSION}}


_PSEUDONYM_KEY: Final = ("An opaque key per person and recipient (stable for one recipient, different for each, so "
                         "partners cannot match records on it): one person's messages stay on one partition, in "
                         "order; restriction notices are keyed by consent id")
_PARTNER_KEY: Final = ("Chosen by the partner, e.g. its own id of the person or case, so that one person's "
                       "messages stay in order; may be absent")


class _Messages:
    """components.messages under construction."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, name: str, message: dict[str, Any]) -> str:
        message = {"name": name, **message}
        if name in self.items and self.items[name] != message:
            raise ValueError(f"two different messages are called {name}")
        self.items[name] = message
        return name


def _contract_name(path: str) -> str:
    """``aler/segnalazione-morosita.schema.json`` -> ``aler.segnalazione-morosita``."""
    return path.removesuffix(".schema.json").replace("/", ".")


def _native_message(schemas: _Schemas, path: str, model: type[BaseModel],
                    mode: Literal["validation", "serialization"], headers: dict[str, Any],
                    correlation: str | None, key: str) -> dict[str, Any]:
    payload = schemas.model(_contract_name(path), model, mode)
    message: dict[str, Any] = {
        "title": f"{_contract_name(path)} (native format)",
        "summary": (model.__doc__ or path).strip().splitlines()[0],
        "contentType": "application/json",
        "headers": headers,
        "payload": payload,
        "bindings": _key(key),
        "externalDocs": {"url": SCHEMA_BASE + path,
                         "description": "The published JSON Schema of this format"},
    }
    if correlation is not None:
        message["correlationId"] = {"$ref": f"#/components/correlationIds/{correlation}"}
    return message


def _fhir_message(schemas: _Schemas, path: str, schema: dict[str, Any], headers: dict[str, Any], key: str,
                  summary: str) -> dict[str, Any]:
    return {
        "title": f"{_contract_name(path)} (FHIR R4)",
        "summary": summary,
        "description": schema["description"],
        "contentType": "application/fhir+json",
        "headers": headers,
        "payload": schemas.add(_contract_name(path), schema),
        "bindings": _key(key),
        "externalDocs": {"url": SCHEMA_BASE + path,
                         "description": f"The published JSON Schema of this format (HL7 FHIR R4: {FHIR_R4})"},
    }


def _canonical_message(schemas: _Schemas, message_type: str, headers: dict[str, Any]) -> dict[str, Any]:
    delivery = schemas.model("canonical.delivery", CanonicalDelivery, "serialization")
    typed = schemas.model(f"canonical.{message_type}", MESSAGE_TYPES[message_type], "serialization")
    return {
        "title": f"{message_type} (canonical envelope)",
        "summary": f"The canonical envelope of {message_type}, minimised to the flow's allowed fields, with its "
                   "disclosure labels",
        "contentType": "application/json",
        "headers": headers,
        "payload": {"allOf": [delivery, {"type": "object", "properties": {
            "message_type": {"const": message_type}, "payload": typed}}]},
        "correlationId": {"$ref": "#/components/correlationIds/header"},
        "bindings": _key(_PSEUDONYM_KEY),
    }


def _aggregate_message(schemas: _Schemas, message_type: str, headers: dict[str, Any]) -> dict[str, Any]:
    model = STATISTICS_MESSAGE_TYPES[message_type]
    return {
        "title": f"{message_type} (aggregate, no subject)",
        "summary": (model.__doc__ or message_type).strip().splitlines()[0],
        "contentType": "application/json",
        "headers": headers,
        "payload": schemas.model(f"gateway.{message_type}", model, "serialization"),
        "correlationId": {"$ref": "#/components/correlationIds/header"},
        "bindings": _key("The flow and the month (<flow>:<YYYY-MM>): an aggregate is about no one"),
    }


# --------------------------------------------------------------------------------------------------------------
# The document


def _inbound_formats() -> dict[str, dict[str, type[BaseModel]]]:
    by_partner: dict[str, dict[str, type[BaseModel]]] = {}
    for path, model in INBOUND_FORMATS.items():
        by_partner.setdefault(path.split("/", 1)[0], {})[path] = model
    return by_partner


def _inbound_messages(partner: str, schemas: _Schemas, messages: _Messages) -> list[str]:
    """What ``partner`` may produce to ``in.<partner>``."""
    descriptor = next((p for p in PARTNERS if p.organisation == partner), None)
    if descriptor is None or descriptor.decode is None:
        return []
    if descriptor.formats.fhir_inbound:
        content_types = adapters.asst_fhir.FHIR_CONTENT_TYPES
        headers = _headers((), ("content-type", "request-id", "message-id", "traceparent"),
                           content_types=content_types)
        paths = {resource: path for path, resource in FHIR_INBOUND_FORMATS.items()}
        missing = [resource for resource in FHIR_INBOUND_RESOURCES if resource not in paths]
        if missing:
            raise ValueError(f"FHIR resources the trust sends without a published schema: {missing}")
        return [messages.add(_contract_name(paths[resource]), _fhir_message(
            schemas, paths[resource], adapters.asst_fhir.contract.inbound_schema(resource), headers, _PARTNER_KEY,
            f"A FHIR R4 {resource}" + (" of message resources, with the Patients they refer to"
                                       if resource == "Bundle" else ", alone or in a Bundle"),
        )) for resource in FHIR_INBOUND_RESOURCES]
    headers = _headers((), ("content-type", "request-id", "message-id", "traceparent"),
                       content_types=("application/json",))
    names = []
    for path, model in _inbound_formats().get(partner, {}).items():
        correlation = "native" if "id_correlazione" in model.model_fields else None
        names.append(messages.add(_contract_name(path), _native_message(
            schemas, path, model, "validation", headers, correlation, _PARTNER_KEY)))
    if descriptor.formats.csv_rows:
        columns = ", ".join(adapters.aler.csv_export.COLUMNS)
        csv_types = adapters.aler.csv_export.CSV_CONTENT_TYPES
        [row_path] = descriptor.formats.csv_rows
        row_schema = SCHEMA_BASE + row_path
        names.append(messages.add("aler.tenancy-export", {
            "title": "aler.tenancy-export (CSV)",
            "summary": "A bulk tenancy export: one tenancy.record per row",
            "description": f"UTF-8 CSV with a header row; columns: {columns}. Each row is described by the JSON "
                           f"Schema {row_schema} (cells by column name).",
            "contentType": csv_types[0],
            "headers": _headers(("content-type",), ("request-id", "message-id", "traceparent"),
                                content_types=csv_types),
            "payload": schemas.add("aler.tenancy-export", {"type": "string", "contentMediaType": csv_types[0],
                                                           "description": f"Columns: {columns}"}),
            "bindings": _key(_PARTNER_KEY),
            "externalDocs": {"url": row_schema, "description": "The published JSON Schema of one row"},
        }))
    return names


def _delivery_messages(flows: list[Flow], schemas: _Schemas, messages: _Messages,
                       purposes: Iterable[str]) -> list[str]:
    """What the gateway writes for ``flows`` (one recipient, one kind of topic)."""
    names: list[str] = []
    outbound = OUTBOUND_FORMATS
    fhir_outbound = FHIR_OUTBOUND_FORMATS
    for flow in flows:
        kind = (flow.recipient, flow.outbound_message_type)
        headers = _headers((*_GATEWAY_HEADERS, "purpose"), ("traceparent",), message_type=flow.outbound_message_type,
                           purposes=purposes)
        if flow.outbound_message_type in STATISTICS_MESSAGE_TYPES:
            name = messages.add(f"gateway.{flow.outbound_message_type}",
                                _aggregate_message(schemas, flow.outbound_message_type, headers))
        elif kind not in ENCODERS:
            name = messages.add(f"canonical.{flow.outbound_message_type}",
                                _canonical_message(schemas, flow.outbound_message_type, headers))
        elif NATIVE_OUTBOUND[kind] in fhir_outbound:
            path = NATIVE_OUTBOUND[kind]
            message = _fhir_message(schemas, path, fhir_outbound[path](), headers, _PSEUDONYM_KEY,
                                    f"{flow.outbound_message_type} as the FHIR R4 resource the partner receives")
            message["correlationId"] = {"$ref": "#/components/correlationIds/header"}
            name = messages.add(_contract_name(path), message)
        else:
            path = NATIVE_OUTBOUND[kind]
            message = _native_message(schemas, path, outbound[path], "serialization", headers, "header",
                                      _PSEUDONYM_KEY)
            name = messages.add(_contract_name(path), message)
        if name not in names:
            names.append(name)
    return names


def _check_tables() -> None:
    missing = sorted(set(ENCODERS) - set(NATIVE_OUTBOUND))
    if missing:
        raise ValueError(f"encoders without a described format (add them to NATIVE_OUTBOUND): {missing}")
    published = {*OUTBOUND_FORMATS, *FHIR_OUTBOUND_FORMATS}
    unknown = sorted(p for p in NATIVE_OUTBOUND.values() if p not in published)
    if unknown:
        raise ValueError(f"NATIVE_OUTBOUND names formats that are not published: {unknown}")


def asyncapi_document(registry: PolicyRegistry) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every topic of ``registry`` (default, empty topic prefix)."""
    _check_tables()
    topics = TopicSettings(prefix="")
    schemas = _Schemas()
    messages = _Messages()
    purposes = sorted(registry.purposes)
    channels: dict[str, dict[str, Any]] = {}
    operations: dict[str, dict[str, Any]] = {}
    senders = sorted(p for p in registry.partners if p in DECODERS)
    notified = {f.recipient for f in registry.flows if f.consent.required}

    status = messages.add("gateway.status", {
        "title": "Status of a message the partner sent",
        "summary": (StatusMessage.__doc__ or "").split("\n")[0],
        "contentType": "application/json",
        "headers": _headers(_GATEWAY_HEADERS, ("traceparent",), message_type="referral.status"),
        "payload": schemas.model("gateway.status", StatusMessage, "serialization"),
        "correlationId": {"$ref": "#/components/correlationIds/header"},
        "bindings": _key(_PSEUDONYM_KEY),
    })
    dead_letter = messages.add("gateway.dead-letter", {
        "title": "Dead-letter entry",
        "summary": "A record of in.<partner> that could not be accepted: the reason and its coordinates, never a "
                   "copy of the payload",
        "contentType": "application/json",
        "headers": _headers(("request-id", "reason")),
        "payload": schemas.model("gateway.dead-letter", DeadLetterEntry, "serialization"),
        "bindings": _key("The key of the dead-lettered record, unchanged (absent if it had none)"),
    })
    notice = messages.add("gateway.restriction-notice", {
        "title": "Restriction notice",
        "summary": "A consent was withdrawn: stop processing what was received under it, then acknowledge",
        "contentType": "application/json",
        "headers": _headers(("message-id", "message-type", "request-id"), message_type="consent.restriction-notice"),
        "payload": schemas.model("gateway.restriction-notice", RestrictionNotice, "serialization"),
        "bindings": _key(_PSEUDONYM_KEY),
    })
    withdrawn = messages.add("gateway.consent-withdrawn", {
        "title": "Consent withdrawn",
        "summary": "A consent was withdrawn: its reference, purposes and recipients",
        "contentType": "application/json",
        "headers": _headers(("message-type", "request-id"), message_type="consent.withdrawn"),
        "payload": schemas.model("gateway.consent-withdrawn", ConsentWithdrawnEvent, "serialization"),
        "bindings": _key("The consent id: every version of one consent stays in order"),
    })

    def channel(address: str, title: str, description: str, names: list[str],
                action: Literal["send", "receive"] | None, summary: str) -> None:
        cid = channel_id(address)
        channels[cid] = {
            "address": address,
            "title": title,
            "description": description,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        if action is not None and names:
            operations[f"{action}_{cid}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{cid}"},
                "title": summary,
                "summary": summary,
                "messages": [{"$ref": f"#/channels/{cid}/messages/{n}"} for n in names],
            }

    for partner in registry.exchanging():
        name = registry.partners[partner].name
        inbound = _inbound_messages(partner, schemas, messages)
        channel(topics.name("in", partner), f"From {name}",
                f"What {name} produces (the topic names the sender: a partner may write only its own in. topic)."
                + ("" if inbound else " The gateway reads nothing from it: it has no decoder for this partner."),
                inbound, "receive", f"Receive what {name} sends")
        plain = [f for f in registry.flows if f.recipient == partner and not f.restricted_topic]
        out = _delivery_messages(plain, schemas, messages, purposes)
        if partner in notified:
            out.append(notice)
        channel(topics.name("out", partner), f"To {name}",
                f"What the gateway delivers to {name}: flows {', '.join(f.id for f in plain) or '(none)'}"
                + (", and restriction notices after a consent withdrawal." if partner in notified else ".")
                + _DEDUPLICATE,
                out, "send", f"Deliver to {name}")
        sends = partner in senders
        channel(topics.name("status", partner), f"Status for {name}",
                f"The status of every message {name} sends: decided, and later what the recipient reported."
                + _DEDUPLICATE,
                [status] if sends else [], "send", f"Tell {name} what happened to its messages")
        channel(topics.name("dlq", partner), f"Dead letters of {name}",
                f"Records of in.{partner} the gateway could not accept. Delivered at least once: deduplicate by "
                "the entry's source topic, partition and offset.",
                [dead_letter] if sends else [], "send", f"Dead-letter what {name} sent and could not be accepted")
    for recipient in sorted({f.recipient for f in registry.flows if f.restricted_topic}):
        name = registry.partners[recipient].name
        restricted = [f for f in registry.flows if f.recipient == recipient and f.restricted_topic]
        channel(topics.name("s4.out", recipient), f"To {name} (S4, restricted)",
                f"S4 data for {name}, kept apart from every other topic: flows "
                f"{', '.join(f.id for f in restricted)}." + _DEDUPLICATE,
                _delivery_messages(restricted, schemas, messages, purposes), "send",
                f"Deliver S4 data to {name}")
    channel(topics.consent_events(), "Consent events",
            "Consent withdrawals, keyed by consent id (compacted). Delivered at least once: an event read twice "
            "names the same consent_ref and withdrawn_at, so applying it again changes nothing.",
            [withdrawn], "send", "Announce consent withdrawals")

    addresses = [c["address"] for c in channels.values()]
    expected = topic_names(registry, topics)
    if sorted(addresses) != sorted(expected):
        raise ValueError(f"channels {sorted(addresses)} differ from the topics {sorted(expected)}")

    bootstrap = GatewaySettings.model_fields["kafka_bootstrap_servers"].default
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:example:quartieri:gateway",
        "info": {
            "title": "Quartieri gateway: Kafka topics",
            "version": "1.0",
            "description": (
                "Every Kafka topic of the consent-aware interoperability gateway for the partners of Milan's "
                "public-housing neighbourhoods, with the messages that travel on it. Partners write their own "
                "in.<partner> topic in their native format; the gateway decides under the flow registry "
                f"(revision {registry.revision}) and the person's consent, and delivers minimised messages on "
                "out.<recipient> (S4 data on s4.out.<recipient>), a status on status.<sender> and what it could "
                "not accept on dlq.<sender>. Topic names get the deployment's GATEWAY_TOPICS__PREFIX in front. "
                "The gateway keys what it writes by an opaque key per person and recipient, so one person's "
                "messages stay ordered and no two recipients share it. "
                + _AT_LEAST_ONCE
            ),
            "license": {"name": "EUPL-1.2", "url": "https://interoperable-europe.ec.europa.eu/collection/eupl"},
            "tags": [{"name": p, "description": registry.partners[p].name} for p in sorted(registry.partners)],
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "title": "Kafka cluster of the deployment",
                "description": (
                    "TLS listeners; every client logs in with SASL/SCRAM-SHA-512 as its own principal "
                    "(User:<partner>). The brokers' ACLs let a partner write only its own in.<partner> topic and "
                    "read only its own out., status., dlq. (and s4.out.) topics, with consumer group ids that "
                    "start with '<partner>.'."
                ),
                "security": [{"$ref": "#/components/securitySchemes/partnerLogin"}],
                "variables": {"bootstrap": {
                    "default": bootstrap,
                    "description": "GATEWAY_KAFKA_BOOTSTRAP_SERVERS: the brokers, comma-separated",
                    "examples": ["kafka-1:9092,kafka-2:9092,kafka-3:9092"],
                }},
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "securitySchemes": {"partnerLogin": {
                "type": "scramSha512",
                "description": "The partner's Kafka user and password, issued by the gateway's operator.",
            }},
            "schemas": schemas.build(),
            "messages": dict(sorted(messages.items.items())),
            "correlationIds": {
                "header": {"description": "The correlation-id header", "location": "$message.header#/correlation-id"},
                "native": {"description": "The partner's id_correlazione",
                           "location": "$message.payload#/id_correlazione"},
            },
        },
    }


# --------------------------------------------------------------------------------------------------------------
# Validating messages read from a topic


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    """``node``, or what its local ``$ref`` (followed until there is none) points at."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _problems(validator: Any, instance: Any, where: str) -> tuple[list[str], bool]:
    """Problems of ``instance`` (place and rule, never the value) and whether it is another kind of message
    altogether: a different JSON type, or a different constant where a message names its kind."""
    problems = []
    other_kind = False
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        pointer = where + "".join(f"/{p}" for p in path)
        if error.validator in ("required", "additionalProperties"):
            what = error.message
        elif isinstance(error.validator_value, dict) or (
                isinstance(error.validator_value, list) and any(isinstance(v, dict) for v in error.validator_value)):
            what = f"fails {error.validator}"  # subschemas: too long to quote
        else:
            what = f"fails {error.validator} {json.dumps(error.validator_value, ensure_ascii=False)[:120]}"
        problems.append(f"{pointer}: {what}")
        other_kind |= (error.validator == "type" and not path) or (error.validator == "const" and len(path) == 1)
    return problems, other_kind


def validate_against_channel(document: Mapping[str, Any], channel_address: str, message_dict: Any,
                             headers: Mapping[str, str] | None = None, *, prefix: str = "") -> list[str]:
    """Problems of ``message_dict`` (a decoded message value) against the channel of ``channel_address``;
    empty when it matches one of the channel's messages. ``headers`` (name -> value), when given, are checked
    too; ``prefix`` (a deployment's topic prefix) is removed from the address first. Problems name the place
    and the rule, never the offending value."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # jsonschema ships no types

    address = channel_address.removeprefix(prefix) if prefix else channel_address
    channel = next((c for c in document["channels"].values() if c.get("address") == address), None)
    if channel is None:
        return [f"no channel has the address {address}"]
    if not channel.get("messages"):
        return [f"channel {address} carries no messages"]
    base = "urn:quartieri-gateway:asyncapi"
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        base, DRAFT202012.create_resource(dict(document)))
    cid = channel_id(address)
    candidates: list[tuple[str, list[str], bool]] = []
    for name in channel["messages"]:
        entry = channel["messages"][name]
        message = _resolve(document, entry)
        ref = entry.get("$ref") if isinstance(entry.get("$ref"), str) else f"#/channels/{cid}/messages/{name}"
        pointer = base + ref
        problems: list[str] = []
        other_kind = False
        checks = [("payload", message_dict)] + ([("headers", dict(headers))] if headers is not None else [])
        for part, instance in checks:
            if part in message:
                found, other = _problems(
                    Draft202012Validator({"$ref": f"{pointer}/{part}"}, registry=registry), instance, part)
                problems += found
                other_kind |= other
        if not problems:
            return []
        candidates.append((name, problems, other_kind))
    # Report against the messages of the same kind (all of them if none is), those that come closest.
    pool = [c for c in candidates if not c[2]] or candidates
    fewest = min(len(c[1]) for c in pool)
    return [f"{name}: {problem}" for name, problems, _ in pool if len(problems) == fewest for problem in problems]
