"""The AsyncAPI 3.0 document of the gateway's Kafka topics, assembled from the registry and the partners'
descriptors (:func:`asyncapi_document`).

Every topic :meth:`gateway.bootstrap.Gateway.topics` creates (with the default, empty prefix) is a channel
(:mod:`gateway.contracts.topics`):

* ``in.<partner>``: what the partner produces in its own format, for every partner whose descriptor has a
  decoder: the JSON formats of its descriptor (:attr:`adapters.descriptor.ContractFormats.inbound`) and the
  messages its descriptor describes whole (:attr:`adapters.descriptor.ContractFormats.messages`: FHIR R4
  resources, CSV exports).
* ``out.<recipient>`` and ``s4.out.<recipient>``: per declared flow, the recipient's native format where a
  descriptor has an encoder for it (and names the format it writes), the canonical envelope with its disclosure
  labels otherwise; ``out.`` also carries the restriction notices of a consent withdrawal (GDPR art. 19) and, for the
  statistics flows, the aggregates the gateway publishes (:class:`schemas.statistics.StatisticsAggregate`, no
  envelope: an aggregate has no subject).
* ``status.<partner>``, ``dlq.<partner>`` and ``gateway.consent-events``: the gateway's own bodies
  (:mod:`gateway.contracts.bodies`).

Messages are built by :mod:`gateway.contracts.messages`; their schemas are hoisted into ``components.schemas``
by :mod:`gateway.contracts.components`, so the document is self-contained.
:func:`~gateway.contracts.channel_check.validate_against_channel` checks a message read from a topic against its
channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel

from gateway.contracts.bodies import (
    CanonicalDelivery,
    ConsentWithdrawnEvent,
    DeadLetterEntry,
    DeliveryLabels,
    RestrictionNotice,
    StatusMessage,
)
from gateway.contracts.channel_check import validate_against_channel
from gateway.contracts.components import ComponentSchemas
from gateway.contracts.messages import (
    AT_LEAST_ONCE,
    DEDUPLICATE,
    GATEWAY_HEADERS,
    KAFKA_BINDING_VERSION,
    PARTNER_KEY,
    PSEUDONYM_KEY,
    ComponentMessages,
    aggregate_message,
    canonical_message,
    contract_name,
    fhir_message,
    header_schema,
    inbound_message,
    kafka_key,
    native_message,
)
from gateway.contracts.topics import channel_id, topic_names
from gateway.partners import PartnerDescriptor, built_in, check_partners
from gateway.policy.registry import Flow, PolicyRegistry
from gateway.routing import encoders_of
from gateway.settings import GatewaySettings, TopicSettings
from schemas.statistics import STATISTICS_MESSAGE_TYPES

__all__ = [
    "ASYNCAPI_VERSION",
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

# --------------------------------------------------------------------------------------------------------------
# The document


@dataclass(frozen=True)
class _Partners:
    """What the document needs of the partners' descriptors, gathered once."""

    descriptors: dict[str, PartnerDescriptor]
    outbound: dict[str, type[BaseModel]]
    fhir_outbound: dict[str, Callable[[], dict[str, Any]]]
    deliveries: dict[tuple[str, str], str]
    """(recipient, outbound message type) -> the path of the format its encoder writes, for every delivery with
    an encoder (the others are canonical envelopes)."""

    @classmethod
    def of(cls, partners: Iterable[PartnerDescriptor]) -> _Partners:
        checked = check_partners(partners)
        encoded = set(encoders_of(checked))
        deliveries = {k: v for p in checked for k, v in p.formats.deliveries.items() if k in encoded}
        missing = sorted(encoded - set(deliveries))
        if missing:
            raise ValueError(f"encoders without a described format (add them to the descriptor's deliveries): "
                             f"{missing}")
        tables = cls({p.organisation: p for p in checked},
                     {k: v for p in checked for k, v in p.formats.outbound.items()},
                     {k: v for p in checked for k, v in p.formats.fhir_outbound.items()}, deliveries)
        unknown = sorted(p for p in deliveries.values() if p not in {*tables.outbound, *tables.fhir_outbound})
        if unknown:
            raise ValueError(f"deliveries name formats that are not published: {unknown}")
        return tables

    def sends(self, organisation: str) -> bool:
        """Whether the gateway decodes what ``organisation`` sends."""
        partner = self.descriptors.get(organisation)
        return partner is not None and partner.decode is not None


def _inbound_messages(partner: PartnerDescriptor, schemas: ComponentSchemas, messages: ComponentMessages
                      ) -> list[str]:
    """What ``partner`` may produce to ``in.<partner>``: its JSON formats, then the messages its descriptor
    describes whole."""
    headers = header_schema((), ("content-type", "request-id", "message-id", "traceparent"),
                            content_types=("application/json",))
    names = []
    for path, model in partner.formats.inbound.items():
        correlation = "native" if "id_correlazione" in model.model_fields else None
        names.append(messages.add(contract_name(path), native_message(
            schemas, path, model, "validation", headers, correlation, PARTNER_KEY)))
    for message in partner.formats.messages():
        names.append(messages.add(message.name, inbound_message(schemas, message)))
    return names


def _delivery_messages(flows: list[Flow], partners: _Partners, schemas: ComponentSchemas,
                       messages: ComponentMessages, purposes: Iterable[str]) -> list[str]:
    """What the gateway writes for ``flows`` (one recipient, one kind of topic)."""
    names: list[str] = []
    for flow in flows:
        path = partners.deliveries.get((flow.recipient, flow.outbound_message_type))
        headers = header_schema((*GATEWAY_HEADERS, "purpose"), ("traceparent",),
                                message_type=flow.outbound_message_type, purposes=purposes)
        if flow.outbound_message_type in STATISTICS_MESSAGE_TYPES:
            name = messages.add(f"gateway.{flow.outbound_message_type}",
                                aggregate_message(schemas, flow.outbound_message_type, headers))
        elif path is None:
            name = messages.add(f"canonical.{flow.outbound_message_type}",
                                canonical_message(schemas, flow.outbound_message_type, headers))
        elif path in partners.fhir_outbound:
            message = fhir_message(schemas, path, partners.fhir_outbound[path](), headers, PSEUDONYM_KEY,
                                   f"{flow.outbound_message_type} as the FHIR R4 resource the partner receives")
            message["correlationId"] = {"$ref": "#/components/correlationIds/header"}
            name = messages.add(contract_name(path), message)
        else:
            message = native_message(schemas, path, partners.outbound[path], "serialization", headers, "header",
                                     PSEUDONYM_KEY)
            name = messages.add(contract_name(path), message)
        if name not in names:
            names.append(name)
    return names


def asyncapi_document(registry: PolicyRegistry, partners: Iterable[PartnerDescriptor] | None = None
                      ) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every topic of ``registry`` (default, empty topic prefix), the partners'
    formats described by ``partners`` (the built-in descriptors by default, :func:`gateway.partners.built_in`)."""
    tables = _Partners.of(built_in() if partners is None else partners)
    topics = TopicSettings(prefix="")
    schemas = ComponentSchemas()
    messages = ComponentMessages()
    purposes = sorted(registry.purposes)
    channels: dict[str, dict[str, Any]] = {}
    operations: dict[str, dict[str, Any]] = {}
    senders = sorted(p for p in registry.partners if tables.sends(p))
    notified = {f.recipient for f in registry.flows if f.consent.required}

    status = messages.add("gateway.status", {
        "title": "Status of a message the partner sent",
        "summary": (StatusMessage.__doc__ or "").split("\n")[0],
        "contentType": "application/json",
        "headers": header_schema(GATEWAY_HEADERS, ("traceparent",), message_type="referral.status"),
        "payload": schemas.model("gateway.status", StatusMessage, "serialization"),
        "correlationId": {"$ref": "#/components/correlationIds/header"},
        "bindings": kafka_key(PSEUDONYM_KEY),
    })
    dead_letter = messages.add("gateway.dead-letter", {
        "title": "Dead-letter entry",
        "summary": "A record of in.<partner> that could not be accepted: the reason and its coordinates, never a "
                   "copy of the payload",
        "contentType": "application/json",
        "headers": header_schema(("request-id", "reason")),
        "payload": schemas.model("gateway.dead-letter", DeadLetterEntry, "serialization"),
        "bindings": kafka_key("The key of the dead-lettered record, unchanged (absent if it had none)"),
    })
    notice = messages.add("gateway.restriction-notice", {
        "title": "Restriction notice",
        "summary": "A consent was withdrawn: stop processing what was received under it, then acknowledge",
        "contentType": "application/json",
        "headers": header_schema(("message-id", "message-type", "request-id"),
                                 message_type="consent.restriction-notice"),
        "payload": schemas.model("gateway.restriction-notice", RestrictionNotice, "serialization"),
        "bindings": kafka_key(PSEUDONYM_KEY),
    })
    withdrawn = messages.add("gateway.consent-withdrawn", {
        "title": "Consent withdrawn",
        "summary": "A consent was withdrawn: its reference, purposes and recipients",
        "contentType": "application/json",
        "headers": header_schema(("message-type", "request-id"), message_type="consent.withdrawn"),
        "payload": schemas.model("gateway.consent-withdrawn", ConsentWithdrawnEvent, "serialization"),
        "bindings": kafka_key("The consent id: every version of one consent stays in order"),
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
        descriptor = tables.descriptors.get(partner)
        inbound = _inbound_messages(descriptor, schemas, messages) if tables.sends(partner) and descriptor else []
        channel(topics.name("in", partner), f"From {name}",
                f"What {name} produces (the topic names the sender: a partner may write only its own in. topic)."
                + ("" if inbound else " The gateway reads nothing from it: it has no decoder for this partner."),
                inbound, "receive", f"Receive what {name} sends")
        plain = [f for f in registry.flows if f.recipient == partner and not f.restricted_topic]
        out = _delivery_messages(plain, tables, schemas, messages, purposes)
        if partner in notified:
            out.append(notice)
        channel(topics.name("out", partner), f"To {name}",
                f"What the gateway delivers to {name}: flows {', '.join(f.id for f in plain) or '(none)'}"
                + (", and restriction notices after a consent withdrawal." if partner in notified else ".")
                + DEDUPLICATE,
                out, "send", f"Deliver to {name}")
        sends = partner in senders
        channel(topics.name("status", partner), f"Status for {name}",
                f"The status of every message {name} sends: decided, and later what the recipient reported."
                + DEDUPLICATE,
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
                f"{', '.join(f.id for f in restricted)}." + DEDUPLICATE,
                _delivery_messages(restricted, tables, schemas, messages, purposes), "send",
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
                + AT_LEAST_ONCE
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

