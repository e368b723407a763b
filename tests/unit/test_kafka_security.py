"""How the gateway logs in to Kafka, and the grants it asks for: checked without a broker (the broker itself is
exercised by tests/integration/test_kafka_acls.py)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from gateway.bus import KafkaSecurity
from gateway.bus.acls import AclOperation, AclResource, kafka_grants
from gateway.contracts.asyncapi import topic_names
from gateway.policy import load_registry
from gateway.settings import GatewaySettings, TopicSettings


def test_no_authentication_by_default() -> None:
    assert KafkaSecurity().client_options() == {"security_protocol": "PLAINTEXT"}
    assert GatewaySettings(_env_file=None).kafka_security_protocol == "PLAINTEXT"


def test_sasl_options_carry_the_password_but_repr_does_not() -> None:
    security = KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "gateway", SecretStr("s3cret-value"))
    options = security.client_options()
    assert options == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "gateway", "sasl_plain_password": "s3cret-value"}
    assert "s3cret-value" not in repr(security)
    assert "ssl_context" in KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "gateway", SecretStr("x")).client_options()


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="username and password"):
        KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "gateway", None)
    with pytest.raises(ValidationError, match="GATEWAY_KAFKA_SASL_PASSWORD"):
        GatewaySettings(_env_file=None, kafka_security_protocol="SASL_SSL", kafka_sasl_username="gateway")


def test_partners_write_only_their_own_in_topic_and_the_gateway_none() -> None:
    topics = TopicSettings(prefix="p.")
    grants = kafka_grants(["aler", "cav", "fwa"], {"cav"}, topics)
    writes: dict[str, set[str]] = {}
    for grant in grants:
        if grant.operation is AclOperation.WRITE:
            assert grant.resource is AclResource.TOPIC and not grant.prefixed
            writes.setdefault(grant.principal, set()).add(grant.name)
    assert writes["User:aler"] == {"p.in.aler"} and writes["User:fwa"] == {"p.in.fwa"}
    assert not {name for name in writes["User:gateway"] if name.startswith("p.in.")}
    reads = {g.name for g in grants if g.principal == "User:cav" and g.operation is AclOperation.READ}
    assert reads == {"p.out.cav", "p.status.cav", "p.dlq.cav", "p.s4.out.cav", "cav."}
    assert "p.s4.out.aler" not in {g.name for g in grants}, "s4.out only where a restricted flow goes"


def test_every_topic_the_gateway_creates_is_granted_to_it_and_written_by_one_party_only() -> None:
    registry = load_registry()
    restricted = {flow.recipient for flow in registry.flows if flow.restricted_topic}
    topics = TopicSettings(prefix="")
    grants = kafka_grants(registry.exchanging(), restricted, topics)
    gateway_ops: dict[str, set[AclOperation]] = {}
    writers: dict[str, set[str]] = {}
    for grant in grants:
        if grant.principal == "User:gateway" and grant.resource is AclResource.TOPIC:
            gateway_ops.setdefault(grant.name, set()).add(grant.operation)
        if grant.operation is AclOperation.WRITE:
            writers.setdefault(grant.name, set()).add(grant.principal)
    for topic in topic_names(registry, topics):
        inbound = topic.startswith("in.")
        access = AclOperation.READ if inbound else AclOperation.WRITE
        assert gateway_ops[topic] == {access, AclOperation.DESCRIBE, AclOperation.CREATE}, topic
        assert writers[topic] == {f"User:{topic.removeprefix('in.')}" if inbound else "User:gateway"}, topic
    assert set(gateway_ops) == set(topic_names(registry, topics)), "no grant on a topic the gateway does not use"
