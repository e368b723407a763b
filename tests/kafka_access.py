"""Who the tests are on the test broker: its SASL credentials and the ACLs a test grants for its own topics.

``scripts/realinfra.py`` starts the broker with SASL/SCRAM-SHA-512 over TLS and KRaft's ``StandardAuthorizer``
and exports ``GATEWAY_TEST_KAFKA_CREDENTIALS`` (JSON: ``security_protocol``, ``sasl_mechanism``, ``ssl_cafile``:
the broker's certificate made for the run, ``users``: {name: password}) next to ``GATEWAY_TEST_KAFKA_BOOTSTRAP``.
Users: ``admin`` (super user), ``gateway``, and one per partner code. Without the credentials variable (a broker
without authentication) every client connects as ``PLAINTEXT`` and granting ACLs does nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from gateway.bus import KafkaSecurity
from gateway.bus.acls import KafkaGrant, create_acls
from gateway.settings import GatewaySettings

__all__ = ["CREDENTIALS_ENV", "KafkaAccess", "access_from", "kafka_access", "login_env"]

CREDENTIALS_ENV = "GATEWAY_TEST_KAFKA_CREDENTIALS"
ADMIN = "admin"
GATEWAY = "gateway"


@dataclass(frozen=True)
class KafkaAccess:
    """The test broker's address, how to log in to it and with which users."""

    bootstrap: str
    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    users: Mapping[str, str] = field(default_factory=dict)
    ssl_cafile: Path | None = None

    @property
    def authenticated(self) -> bool:
        """Whether the broker authenticates clients (and so enforces ACLs)."""
        return self.protocol != "PLAINTEXT"

    def security(self, user: str, password: str | None = None) -> KafkaSecurity:
        """How ``user`` logs in (``password`` overrides the real one, to try a wrong one)."""
        if not self.authenticated:
            return KafkaSecurity()
        secret = SecretStr(password if password is not None else self.users[user])
        return KafkaSecurity(self.protocol, self.mechanism, user, secret, self.ssl_cafile)  # type: ignore[arg-type]

    def client_options(self, user: str, password: str | None = None) -> dict[str, Any]:
        """Keyword arguments for a raw aiokafka client logged in as ``user``."""
        return {"bootstrap_servers": self.bootstrap, **self.security(user, password).client_options()}

    def settings(self, user: str = GATEWAY) -> dict[str, object]:
        """``GatewaySettings`` fields for a gateway logged in as ``user``."""
        updates: dict[str, object] = {"kafka_bootstrap_servers": self.bootstrap}
        if self.authenticated:
            updates.update(kafka_security_protocol=self.protocol, kafka_sasl_mechanism=self.mechanism,
                           kafka_sasl_username=user, kafka_sasl_password=SecretStr(self.users[user]),
                           kafka_ssl_cafile=self.ssl_cafile)
        return updates

    async def grant(self, grants: Iterable[KafkaGrant]) -> None:
        """Create ACLs as the super user (nothing to do on a broker without authentication)."""
        if not self.authenticated:
            return
        admin = AIOKafkaAdminClient(client_id="tests-acl-admin", **self.client_options(ADMIN))
        await admin.start()
        try:
            await create_acls(admin, grants)
        finally:
            await admin.close()


def kafka_access(bootstrap: str) -> KafkaAccess:
    """The broker at ``bootstrap`` with the credentials ``scripts/realinfra.py`` exported, if any."""
    return access_from(bootstrap, os.environ.get(CREDENTIALS_ENV, ""))


def access_from(bootstrap: str, raw: str) -> KafkaAccess:
    """The broker at ``bootstrap`` with credentials as ``scripts/realinfra.py`` writes them (JSON; empty: none)."""
    if not raw.strip():
        return KafkaAccess(bootstrap)
    credentials = json.loads(raw)
    cafile = credentials.get("ssl_cafile")
    return KafkaAccess(bootstrap, credentials["security_protocol"], credentials["sasl_mechanism"],
                       dict(credentials["users"]), Path(cafile) if cafile else None)


def login_env(settings: GatewaySettings) -> dict[str, str]:
    """The environment that gives a ``gateway`` command in another process the same Kafka login as
    ``settings`` (nothing for a broker without authentication)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    env = {"GATEWAY_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
           "GATEWAY_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism}
    if settings.kafka_sasl_username is not None:
        env["GATEWAY_KAFKA_SASL_USERNAME"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        env["GATEWAY_KAFKA_SASL_PASSWORD"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile is not None:
        env["GATEWAY_KAFKA_SSL_CAFILE"] = str(settings.kafka_ssl_cafile)
    return env
