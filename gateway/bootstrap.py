"""The composition root: builds the gateway's parts from one settings object and wires them together.

Nothing is built at import time. Tests call :func:`build` with their own settings (embedded bus and SQLite,
or a real Kafka broker and PostgreSQL server) and, where they need to, their own clients and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from joserfc.jwk import import_key

from gateway.audit.checkpointer import AuditCheckpointer
from gateway.audit.keys import ensure_signing_key_file
from gateway.auth import PartnerClient, SigningKey, TokenIssuer, TokenValidator, generate_signing_key
from gateway.bus import Bus, EmbeddedBus, KafkaBus, KafkaSecurity
from gateway.consents import ConsentService
from gateway.identity.crosswalk import Crosswalk
from gateway.pipeline.consumer import InboundConsumer
from gateway.pipeline.intake import Intake
from gateway.pipeline.relay import Relay
from gateway.policy import PolicyRegistry, load_registry
from gateway.privacy_office import IntegrityCache
from gateway.retention import RetentionJob
from gateway.routing import DECODERS, ENCODERS
from gateway.settings import GatewaySettings
from gateway.store import Store

__all__ = ["Gateway", "build", "load_clients"]


@dataclass
class Gateway:
    """Every long-lived part of a running gateway."""

    settings: GatewaySettings
    registry: PolicyRegistry
    store: Store
    bus: Bus
    intake: Intake
    relay: Relay
    consumer: InboundConsumer
    consents: ConsentService
    issuer: TokenIssuer
    validator: TokenValidator
    clients: tuple[PartnerClient, ...]
    checkpointer: AuditCheckpointer
    integrity: IntegrityCache
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def topics(self) -> list[str]:
        """Every topic the gateway uses: in/out/status/dlq per partner, plus consent events."""
        t = self.settings.topics
        names = [t.name(kind, p) for p in self.registry.exchanging() for kind in ("in", "out", "status", "dlq")]
        restricted = sorted({f.recipient for f in self.registry.flows if f.restricted_topic})
        return [*names, *(t.name("s4.out", p) for p in restricted), t.consent_events()]

    async def start(self, *, workers: bool = True) -> None:
        """Migrate the store, connect the bus, create topics and (optionally) start relay and consumer."""
        await self.store.migrate()
        await self.bus.start()
        await self.bus.ensure_topics(self.topics())
        if workers:
            await self.start_workers()

    async def start_workers(self) -> None:
        self.checkpointer.signing_keys()  # fail closed: no worker runs without a usable checkpoint key
        self._stop.clear()
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self.relay.run(self._stop, self.settings.relay_poll_seconds), name="relay"),
            asyncio.create_task(self.consumer.run(self._stop, ready), name="inbound-consumer"),
            asyncio.create_task(self.checkpointer.run(self._stop), name="audit-checkpointer"),
            asyncio.create_task(RetentionJob(self.store, self.registry, self.settings.instance_id).run(self._stop),
                                name="retention"),  # daily, first run a few minutes after start (D-08)
        ]
        await asyncio.wait_for(ready.wait(), timeout=60)

    async def stop(self) -> None:
        self._stop.set()
        self.relay.wake()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)
        self._tasks = []
        await self.bus.stop()
        await self.store.close()


def load_clients(path: Path) -> tuple[PartnerClient, ...]:
    """Partner clients from a YAML list of {client_id, secret_hash, organisation, role, scopes}."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(
        PartnerClient(client_id=c["client_id"], secret_hash=c["secret_hash"], organisation=c["organisation"],
                      role=c["role"], scopes=frozenset(c["scopes"]))
        for c in raw["clients"]
    )


def _signing_key(settings: GatewaySettings) -> SigningKey:
    path = settings.token_signing_key_file
    if path is None:
        if settings.environment == "production":
            raise RuntimeError("GATEWAY_TOKEN_SIGNING_KEY_FILE must be set in production")
        path = settings.data_dir / "token-signing-key.jwk.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(generate_signing_key().as_dict(private=True)), encoding="utf-8")
            path.chmod(0o600)
    key = import_key(json.loads(path.read_text(encoding="utf-8")))
    return key  # type: ignore[return-value]


def _pseudonym_key(settings: GatewaySettings) -> bytes:
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode("utf-8")
    if settings.environment == "production":
        raise RuntimeError("GATEWAY_PSEUDONYM_KEY must be set in production")
    path = settings.data_dir / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def _audit_signing_key_file(settings: GatewaySettings) -> Path | None:
    """The checkpoint key file; None in production when unset (workers then refuse to start)."""
    path = settings.audit_signing_key_file
    if settings.environment == "production":
        return path
    if path is None:
        path = settings.data_dir / "audit-signing-key.txt"
    ensure_signing_key_file(path, settings.audit_origin)
    return path


def _bus(settings: GatewaySettings) -> Bus:
    if settings.bus == "kafka":
        security = KafkaSecurity(settings.kafka_security_protocol, settings.kafka_sasl_mechanism,
                                 settings.kafka_sasl_username, settings.kafka_sasl_password, settings.kafka_ssl_cafile)
        return KafkaBus(settings.kafka_bootstrap_servers, client_id=settings.instance_id,
                        partitions=settings.topics.partitions, replication_factor=settings.topics.replication_factor,
                        security=security)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedBus(settings.embedded_bus_path(), partitions=settings.topics.partitions)


def build(settings: GatewaySettings, *, clients: tuple[PartnerClient, ...] | None = None,
          signing_key: SigningKey | None = None) -> Gateway:
    """Wire a gateway from ``settings``; ``clients`` and ``signing_key`` override the configured ones."""
    registry = load_registry()
    if clients is None:
        if settings.clients_file is None:
            if settings.environment == "production":
                raise RuntimeError("GATEWAY_CLIENTS_FILE must be set in production")
            clients = ()
        else:
            clients = load_clients(settings.clients_file)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = signing_key or _signing_key(settings)
    pseudonym_key = _pseudonym_key(settings)
    store = Store.connect(settings.resolved_database_url(), pseudonym_key)
    bus = _bus(settings)
    intake = Intake(store, registry, settings.topics, DECODERS, ENCODERS, settings.instance_id,
                    settings.max_body_bytes, tokenise=Crosswalk(pseudonym_key).token)
    relay = Relay(store, bus, settings.instance_id, settings.relay_batch_size, registry=registry)
    intake.on_enqueued = relay.wake
    consents = ConsentService(store, registry, settings.instance_id, settings.topics)
    consents.on_enqueued = relay.wake
    issuer = TokenIssuer(clients, key, settings.token_issuer, settings.token_audience, settings.token_ttl_seconds)
    return Gateway(
        settings=settings,
        registry=registry,
        store=store,
        bus=bus,
        intake=intake,
        relay=relay,
        consumer=InboundConsumer(intake, bus, settings.topics, sorted(DECODERS)),
        consents=consents,
        issuer=issuer,
        validator=TokenValidator(issuer.public_jwks(), settings.token_issuer, settings.token_audience),
        clients=clients,
        checkpointer=AuditCheckpointer(
            store, settings.audit_origin, _audit_signing_key_file(settings),
            every_records=settings.audit_checkpoint_every_records,
            every_seconds=settings.audit_checkpoint_every_seconds,
        ),
        integrity=IntegrityCache(settings.privacy_integrity_max_age_seconds),
    )
