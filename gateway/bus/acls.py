"""The Kafka ACLs that make the topic name trustworthy: only ALER's principal may write ``in.aler``.

The gateway takes the sender of a Kafka message from the topic it arrived on, so the brokers must make sure
that only the partner itself writes its ``in.<partner>`` topic. :func:`kafka_grants` lists every grant a
deployment needs, least privilege throughout (brokers run KRaft's ``StandardAuthorizer`` with
``allow.everyone.if.no.acl.found=false``, so anything not granted is refused):

- each partner principal (``User:<partner>``): write and describe its ``in.<partner>``; read and describe its
  ``out.``, ``status.`` and ``dlq.`` topics (and ``s4.out.`` where a restricted flow reaches it); read consumer
  groups whose id starts with ``<partner>.``;
- the gateway's principal: read, describe and create every ``in.`` topic; write, describe and create every
  ``out.``, ``status.``, ``dlq.``, ``s4.out.`` topic and the consent-events topic; read its own consumer groups
  (ids starting with ``gateway-``). It never writes an ``in.`` topic, so it cannot pose as a partner either.

Topic grants are literal (exact names, with the deployment's topic prefix), so a partner added to the registry
gets nothing until its grants are created. :func:`create_acls` creates grants through the Kafka Admin API with
a super user's client (aiokafka ships the CreateAcls request but no admin method for it);
:func:`kafka_acls_arguments` writes the same grants as ``kafka-acls.sh`` arguments (``deploy/kafka/acls.txt``,
which the compose deployment applies).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import NoError, for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1
from aiokafka.protocol.api import Request

from gateway.bus.errors import BusUnavailable
from gateway.settings import TopicSettings

__all__ = [
    "GATEWAY_GROUP_PREFIX",
    "AclOperation",
    "AclResource",
    "KafkaGrant",
    "create_acls",
    "gateway_grants",
    "kafka_acls_arguments",
    "kafka_grants",
    "partner_grants",
]

GATEWAY_GROUP_PREFIX = "gateway-"
"""Consumer groups of the gateway's own workers (``gateway-intake``)."""


class AclResource(IntEnum):
    """Kafka's resource type codes (``org.apache.kafka.common.resource.ResourceType``)."""

    TOPIC = 2
    GROUP = 3


class AclOperation(IntEnum):
    """Kafka's ACL operation codes (``org.apache.kafka.common.acl.AclOperation``)."""

    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


_LITERAL, _PREFIXED = 3, 4  # PatternType codes
_ALLOW = 3  # AclPermissionType.ALLOW


@dataclass(frozen=True)
class KafkaGrant:
    """One ALLOW ACL binding, from any host."""

    principal: str
    """``User:<name>``, the SASL user name the client logs in with."""
    resource: AclResource
    """A topic or a consumer group."""
    name: str
    """The topic name, or the group id (prefix when ``prefixed``)."""
    operation: AclOperation
    """What the principal may do on it."""
    prefixed: bool = False
    """Whether ``name`` is a prefix (the deployment uses it for consumer group ids only)."""


def partner_grants(partner: str, topics: TopicSettings, *, restricted: bool = False,
                   principal: str | None = None) -> list[KafkaGrant]:
    """What ``partner`` may do: write its own ``in.`` topic, read its own outgoing topics with its own groups."""
    who = principal or f"User:{partner}"
    inbound = topics.name("in", partner)
    grants = [KafkaGrant(who, AclResource.TOPIC, inbound, op) for op in (AclOperation.WRITE, AclOperation.DESCRIBE)]
    kinds = ["out", "status", "dlq", *(["s4.out"] if restricted else [])]
    for kind in kinds:
        topic = topics.name(kind, partner)
        grants += [KafkaGrant(who, AclResource.TOPIC, topic, op) for op in (AclOperation.READ, AclOperation.DESCRIBE)]
    grants.append(KafkaGrant(who, AclResource.GROUP, f"{partner}.", AclOperation.READ, prefixed=True))
    return grants


def gateway_grants(partners: Iterable[str], restricted: Collection[str], topics: TopicSettings, *,
                   principal: str = "User:gateway") -> list[KafkaGrant]:
    """What the gateway may do: read every ``in.`` topic, write the topics it produces, create all of them."""
    reads: list[str] = []
    writes: list[str] = []
    for partner in partners:
        reads.append(topics.name("in", partner))
        writes += [topics.name(kind, partner) for kind in ("out", "status", "dlq")]
        if partner in restricted:
            writes.append(topics.name("s4.out", partner))
    writes.append(topics.consent_events())
    grants: list[KafkaGrant] = []
    for names, access in ((reads, AclOperation.READ), (writes, AclOperation.WRITE)):
        for topic in names:
            grants += [KafkaGrant(principal, AclResource.TOPIC, topic, op)
                       for op in (access, AclOperation.DESCRIBE, AclOperation.CREATE)]
    grants.append(KafkaGrant(principal, AclResource.GROUP, GATEWAY_GROUP_PREFIX, AclOperation.READ, prefixed=True))
    return grants


def kafka_grants(partners: Sequence[str], restricted: Collection[str], topics: TopicSettings, *,
                 gateway_principal: str = "User:gateway") -> list[KafkaGrant]:
    """Every grant of a deployment: the gateway's and each exchanging partner's (``restricted``: partners that
    receive ``s4.out.`` topics)."""
    grants = gateway_grants(partners, restricted, topics, principal=gateway_principal)
    for partner in partners:
        grants += partner_grants(partner, topics, restricted=partner in restricted)
    return grants


def kafka_acls_arguments(grants: Iterable[KafkaGrant]) -> list[str]:
    """``grants`` as lines of ``kafka-acls.sh --add`` arguments, one per principal, resource type, pattern and set
    of operations (the tool grants every listed operation on every listed resource), e.g.
    ``--allow-principal User:aler --operation Write --operation Describe --topic in.aler
    --resource-pattern-type literal``."""
    operations: dict[tuple[str, AclResource, bool, str], list[AclOperation]] = {}
    for grant in dict.fromkeys(grants):
        operations.setdefault((grant.principal, grant.resource, grant.prefixed, grant.name), []).append(grant.operation)
    resources: dict[tuple[str, AclResource, bool, tuple[AclOperation, ...]], list[str]] = {}
    for (principal, resource, prefixed, name), ops in operations.items():
        resources.setdefault((principal, resource, prefixed, tuple(ops)), []).append(name)
    lines = []
    for (principal, resource, prefixed, same_ops), names in resources.items():
        option = "--topic" if resource is AclResource.TOPIC else "--group"
        words = [f"--allow-principal {principal}", *(f"--operation {op.name.capitalize()}" for op in same_ops),
                 *(f"{option} {name}" for name in names),
                 f"--resource-pattern-type {'prefixed' if prefixed else 'literal'}"]
        lines.append(" ".join(words))
    return lines


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka is untyped here
    """CreateAcls v1 carrying many creations (aiokafka's own request class sends one)."""

    API_KEY = 30

    def __init__(self, creations: list[tuple[Any, ...]]) -> None:
        self._creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


async def create_acls(admin: AIOKafkaAdminClient, grants: Iterable[KafkaGrant]) -> None:
    """Create ``grants`` with a started admin client whose principal may alter ACLs (a super user).

    Creating a binding that already exists is not an error, so this can run at every deployment.
    """
    creations = [
        (int(g.resource), g.name, _PREFIXED if g.prefixed else _LITERAL, g.principal, "*", int(g.operation), _ALLOW)
        for g in dict.fromkeys(grants)
    ]
    if not creations:
        return
    response = await admin._send_request(_CreateAcls(creations))
    failures = []
    for creation, (code, message) in zip(creations, response.creation_responses, strict=True):
        error = for_code(code)
        if error is not NoError:
            what = f"{creation[3]} {AclOperation(creation[5]).name} {creation[1]}"
            failures.append(f"{what}: {message or error.__name__}")
    if failures:
        raise BusUnavailable("could not create Kafka ACLs: " + "; ".join(failures), retriable=False)
