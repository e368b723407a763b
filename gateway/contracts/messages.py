"""``components.messages`` of the AsyncAPI document: the Kafka headers and keys of each message, and the message
built for each kind of body (a partner's native JSON format, a FHIR resource, a partner's message described by its
descriptor, the canonical envelope, a statistics aggregate)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from pydantic import BaseModel

from adapters.descriptor import InboundMessage
from gateway.contracts.bodies import CanonicalDelivery
from gateway.contracts.components import ComponentSchemas
from gateway.contracts.formats import SCHEMA_BASE
from schemas.messages import MESSAGE_TYPES
from schemas.statistics import STATISTICS_MESSAGE_TYPES

__all__ = [
    "AT_LEAST_ONCE",
    "DEDUPLICATE",
    "FHIR_R4",
    "GATEWAY_HEADERS",
    "KAFKA_BINDING_VERSION",
    "PARTNER_KEY",
    "PSEUDONYM_KEY",
    "ComponentMessages",
    "aggregate_message",
    "canonical_message",
    "contract_name",
    "fhir_message",
    "header_schema",
    "inbound_message",
    "kafka_key",
    "native_message",
]

KAFKA_BINDING_VERSION: Final = "0.5.0"
FHIR_R4: Final = "https://hl7.org/fhir/R4/"

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


def header_schema(required: Iterable[str], optional: Iterable[str] = (), *, message_type: str | None = None,
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


GATEWAY_HEADERS: Final = ("message-id", "correlation-id", "request-id", "message-type", "schema-version")

AT_LEAST_ONCE: Final = (
    "Delivery is at least once: after a crash or a broker fault the gateway sends again what it cannot prove was "
    "acknowledged, so a consumer may read the same message more than once. A repeat always carries the same "
    "message-id header: deduplicate by message-id (dead-letter entries, which have none, by their source topic, "
    "partition and offset)."
)
"""What every consumer of the gateway's topics must know; repeated on each channel the gateway writes."""
DEDUPLICATE: Final = " Delivered at least once: deduplicate by the message-id header."


def kafka_key(description: str) -> dict[str, Any]:
    """The Kafka binding of a message whose key is described by ``description``."""
    return {"kafka": {"key": {"type": "string", "description": description}, "bindingVersion": KAFKA_BINDING_VERSION}}


PSEUDONYM_KEY: Final = ("An opaque key per person and recipient (stable for one recipient, different for each, so "
                        "partners cannot match records on it): one person's messages stay on one partition, in "
                        "order; restriction notices are keyed by consent id")
PARTNER_KEY: Final = ("Chosen by the partner, e.g. its own id of the person or case, so that one person's "
                      "messages stay in order; may be absent")


class ComponentMessages:
    """components.messages under construction."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, name: str, message: dict[str, Any]) -> str:
        message = {"name": name, **message}
        if name in self.items and self.items[name] != message:
            raise ValueError(f"two different messages are called {name}")
        self.items[name] = message
        return name


def contract_name(path: str) -> str:
    """``aler/segnalazione-morosita.schema.json`` -> ``aler.segnalazione-morosita``."""
    return path.removesuffix(".schema.json").replace("/", ".")


def native_message(schemas: ComponentSchemas, path: str, model: type[BaseModel],
                   mode: Literal["validation", "serialization"], headers: dict[str, Any],
                   correlation: str | None, key: str) -> dict[str, Any]:
    """A partner's native JSON format, described by the pydantic model its published JSON Schema comes from."""
    payload = schemas.model(contract_name(path), model, mode)
    message: dict[str, Any] = {
        "title": f"{contract_name(path)} (native format)",
        "summary": (model.__doc__ or path).strip().splitlines()[0],
        "contentType": "application/json",
        "headers": headers,
        "payload": payload,
        "bindings": kafka_key(key),
        "externalDocs": {"url": SCHEMA_BASE + path,
                         "description": "The published JSON Schema of this format"},
    }
    if correlation is not None:
        message["correlationId"] = {"$ref": f"#/components/correlationIds/{correlation}"}
    return message


def fhir_message(schemas: ComponentSchemas, path: str, schema: dict[str, Any], headers: dict[str, Any], key: str,
                 summary: str) -> dict[str, Any]:
    """A FHIR R4 resource a recipient receives, described by its published JSON Schema."""
    return {
        "title": f"{contract_name(path)} (FHIR R4)",
        "summary": summary,
        "description": schema["description"],
        "contentType": "application/fhir+json",
        "headers": headers,
        "payload": schemas.add(contract_name(path), schema),
        "bindings": kafka_key(key),
        "externalDocs": {"url": SCHEMA_BASE + path,
                         "description": f"The published JSON Schema of this format (HL7 FHIR R4: {FHIR_R4})"},
    }


def canonical_message(schemas: ComponentSchemas, message_type: str, headers: dict[str, Any]) -> dict[str, Any]:
    """The canonical envelope of ``message_type`` with its labels: what a recipient without a native format gets."""
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
        "bindings": kafka_key(PSEUDONYM_KEY),
    }


def aggregate_message(schemas: ComponentSchemas, message_type: str, headers: dict[str, Any]) -> dict[str, Any]:
    """A statistics aggregate the gateway publishes (no envelope: an aggregate has no subject)."""
    model = STATISTICS_MESSAGE_TYPES[message_type]
    return {
        "title": f"{message_type} (aggregate, no subject)",
        "summary": (model.__doc__ or message_type).strip().splitlines()[0],
        "contentType": "application/json",
        "headers": headers,
        "payload": schemas.model(f"gateway.{message_type}", model, "serialization"),
        "correlationId": {"$ref": "#/components/correlationIds/header"},
        "bindings": kafka_key("The flow and the month (<flow>:<YYYY-MM>): an aggregate is about no one"),
    }


def inbound_message(schemas: ComponentSchemas, message: InboundMessage) -> dict[str, Any]:
    """A message a partner's descriptor describes whole (:attr:`adapters.descriptor.ContractFormats.messages`)."""
    schema_url = SCHEMA_BASE + message.schema_path
    optional = ("content-type", "request-id", "message-id", "traceparent")
    required = optional[:1] if message.content_type_required else ()
    return {
        "title": message.title,
        "summary": message.summary,
        "description": message.description.replace("{schema}", schema_url),
        "contentType": message.content_types[0],
        "headers": header_schema(required, optional[len(required):], content_types=message.content_types),
        "payload": schemas.add(message.name, message.payload),
        "bindings": kafka_key(PARTNER_KEY),
        "externalDocs": {"url": schema_url, "description": message.schema_description},
    }
