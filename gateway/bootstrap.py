"""The composition root: builds the gateway's parts from one settings object and wires them together.

Nothing is built at import time. Tests call :func:`build` with their own settings (embedded bus and SQLite,
or a real Kafka broker and PostgreSQL server) and, where they need to, their own clients and keys.

:meth:`Gateway.start` waits for the database and the bus to answer, with growing back-off bounded by
``startup_wait_seconds`` (a worker started during an outage comes up when its dependencies do, instead of
exiting), then runs the long-running tasks under a :class:`~gateway.supervision.Supervisor`.
:meth:`Gateway.stop` stops every task, the bus and the store, and only then reports what failed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from sqlalchemy.engine import make_url

from gateway.audit.checkpointer import AuditCheckpointer
from gateway.audit.keys import ensure_signing_key_file
from gateway.auth import (
    ClientDirectory,
    InvalidToken,
    PartnerClient,
    Principal,
    SigningKey,
    TokenIssuer,
    TokenValidator,
    generate_signing_key,
)
from gateway.auth.client_assertion import ClaimAssertion
from gateway.auth.directory import LoadClients
from gateway.auth.keys import read_token_keys
from gateway.bus import Bus, BusUnavailable, EmbeddedBus, KafkaBus, KafkaSecurity
from gateway.consents.service import ConsentService
from gateway.errors import DependencyUnavailable
from gateway.identity.crosswalk import Crosswalk
from gateway.logging import get_logger
from gateway.observability.metrics import GatewayMetrics, MetricsServer, StateSampler, serve
from gateway.observability.observer import PipelineObserver
from gateway.observability.tracing import MessageTracer, otlp_provider
from gateway.partners import PartnerDescriptor, built_in
from gateway.pipeline.consumer import InboundConsumer
from gateway.pipeline.intake import Intake
from gateway.pipeline.relay import Relay
from gateway.policy import PolicyRegistry, load_registry
from gateway.privacy.activity import OVERVIEW_DAYS, ActivityTally
from gateway.privacy.integrity import IntegrityCache
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.overview import OverviewKeeper
from gateway.retention import RetentionJob
from gateway.routing import decoders_of, encoders_of
from gateway.settings import GatewaySettings
from gateway.store import Store
from gateway.supervision import Supervisor

__all__ = ["DependencyTimeout", "Gateway", "GatewayStopError", "build", "load_clients"]

log = get_logger(__name__)

_GC_THRESHOLDS = (100_000, 10, 100)
"""The garbage collector's thresholds while the gateway runs. The youngest generation is collected once container
objects allocated and not yet freed pass 100,000 (Python's default is 700), the older two every ten and every
hundred collections of the one below.

A batch of 500 messages allocates some 40,000 container objects that live until the batch has been delivered
and then die by reference counting. At 700 the collector ran about sixty times per batch,
each time scanning objects the batch still needed and promoting them, so that the middle generation rescanned
them again: 0.025 ms of CPU per F1 referral with two workers, 7 % of a worker's. At 100,000 a batch no longer
reaches the threshold, so what it allocated is freed before anything scans it: no collection in a 30-second
window, and the same resident memory (``bench/README.md``, "Garbage collection").

Cyclic garbage (what reference counting cannot free) is collected once 100,000 more container objects have been
allocated than freed, so the memory it can hold is bounded by that count: a batch kept alive by a cycle counts
towards it, and the collection it brings on frees it."""


class DependencyTimeout(RuntimeError):
    """The database or the bus did not answer within ``startup_wait_seconds`` of the gateway starting."""

    def __init__(self, dependency: str, where: str, waited_s: float, error_type: str) -> None:
        self.dependency = dependency
        """``database`` or ``bus``."""
        self.where = where
        """The URL (password hidden) or bootstrap servers that were tried."""
        super().__init__(f"the {dependency} at {where} did not answer within {waited_s:g} s "
                         f"(last error {error_type}); raise GATEWAY_STARTUP_WAIT_SECONDS to wait longer")


class GatewayStopError(ExceptionGroup[Exception]):
    """Everything was stopped and closed, and these parts failed while stopping."""


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
    directory: ClientDirectory
    """The partner clients enabled now (the store's, seeded from ``clients``); see :meth:`authenticate`."""
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor: Supervisor | None = None
    """Runs the long-running tasks once :meth:`start_workers` was called."""
    state: Literal["created", "starting", "running", "stopping", "stopped"] = "created"
    """Readiness answers ready only while ``running``."""

    token_key_file: Path | None = None
    """The token-signing key file this gateway reads (None: a key was passed in); re-read when it changes."""
    _token_key_stamp: tuple[int, int] | None = None
    observer: PipelineObserver = field(default_factory=PipelineObserver)
    """Metrics and traces of the pipeline (:mod:`gateway.observability`), shared by the intake, the relay and
    the consumer."""
    metrics_server: MetricsServer | None = None
    """The ``/metrics`` endpoint while the gateway runs with ``metrics_port`` set."""

    @property
    def metrics(self) -> GatewayMetrics:
        return self.observer.metrics

    def reload_token_keys(self) -> None:
        """Take a rotated token-signing key file (``gateway tokens rotate-key``) without a restart: sign with its
        new key, publish and accept the retired ones still listed. Cheap when nothing changed (one stat)."""
        if self.token_key_file is None:
            return
        try:
            stat = self.token_key_file.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._token_key_stamp:
                return
            keys = read_token_keys(self.token_key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # keep the keys in use; retried next time
            log.error("token_key_file_unreadable", error=type(exc).__name__)
            return
        retired = [key for key, _ in keys.retired]
        self.issuer.use_keys(keys.signing, retired)
        self.validator.use_keys(self.issuer.public_jwks())
        self._token_key_stamp = stamp

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header: a valid token of a client still enabled (the directory
        reloaded if its snapshot is older than ``clients_refresh_seconds``), else an ``AuthError``."""
        self.reload_token_keys()
        principal = self.validator.validate(authorization)
        await self.directory.refresh()
        if not self.directory.is_active(principal.client_id):
            raise InvalidToken("The client of this access token is disabled. Ask the gateway's operator.")
        return principal

    def topics(self) -> list[str]:
        """Every topic the gateway uses: in/out/status/dlq per partner, plus consent events."""
        t = self.settings.topics
        names = [t.name(kind, p) for p in self.registry.exchanging() for kind in ("in", "out", "status", "dlq")]
        restricted = sorted({f.recipient for f in self.registry.flows if f.restricted_topic})
        return [*names, *(t.name("s4.out", p) for p in restricted), t.consent_events()]

    async def start(self, *, workers: bool = True) -> None:
        """Wait for the store (and migrate it) and the bus (and create topics), then, optionally, start the
        relay, the consumer, the checkpointer and the retention job under supervision.

        Raises :class:`DependencyTimeout` naming the store or bus that did not answer within
        ``startup_wait_seconds``."""
        self.state = "starting"
        if self.settings.metrics_port is not None and self.metrics_server is None:
            self.metrics_server = serve(self.metrics, self.settings.metrics_host, self.settings.metrics_port)
            log.info("metrics-serving", port=self.metrics_server.port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.startup_wait_seconds
        await self._until_available("database", make_url(self.settings.resolved_database_url())
                                    .render_as_string(hide_password=True), self.store.migrate, deadline)
        await self.directory.refresh(force=True)  # seeds the stored clients from the configured ones
        where = self.settings.kafka_bootstrap_servers if self.settings.bus == "kafka" else str(
            self.settings.embedded_bus_path())
        await self._until_available("bus", where, self._connect_bus, deadline)
        if workers:
            await self.start_workers()
        self.state = "running"

    async def _connect_bus(self) -> None:
        await self.bus.start()
        await self.bus.ensure_topics(self.topics())

    async def _until_available(self, dependency: str, where: str, attempt: Callable[[], Awaitable[None]],
                               deadline: float) -> None:
        """Run ``attempt`` until it succeeds, backing off while the dependency is unavailable (a retriable
        store or bus error) until ``deadline``; errors that waiting cannot cure are raised at once."""
        loop = asyncio.get_running_loop()
        backoff = min(0.25, self.settings.startup_backoff_max_seconds)
        tries = 0
        while True:
            tries += 1
            try:
                await attempt()
                if tries > 1:
                    log.info(f"{dependency}-available", attempt=tries)
                return
            except (DependencyUnavailable, BusUnavailable) as exc:
                if isinstance(exc, BusUnavailable) and not exc.retriable:
                    raise
                if isinstance(exc, BusUnavailable) and dependency == "bus":
                    await self.bus.stop()  # a half-started producer is closed before the next attempt
                left = deadline - loop.time()
                if left <= 0:
                    raise DependencyTimeout(dependency, where, self.settings.startup_wait_seconds,
                                            type(exc.__cause__ or exc).__name__) from exc
                pause = min(backoff, left)
                log.warning(f"waiting-for-{dependency}", attempt=tries, retry_in_s=round(pause, 2),
                            error_type=type(exc.__cause__ or exc).__name__)
                await asyncio.sleep(pause)
                backoff = min(backoff * 2, self.settings.startup_backoff_max_seconds)

    async def start_workers(self) -> None:
        """Start the long-running tasks under supervision and return once the consumer has joined its group."""
        self.checkpointer.signing_keys()  # fail closed: no worker runs without a usable checkpoint key
        self._stop.clear()
        ready = asyncio.Event()
        settings = self.settings
        supervisor = Supervisor(self._stop, restart_limit=settings.task_restart_limit,
                                backoff_max=settings.task_restart_backoff_max_seconds,
                                healthy_after=settings.task_healthy_after_seconds)
        self.supervisor = supervisor
        retention = RetentionJob(self.store, self.registry, settings.instance_id)
        # The worker that commits a batch delivers it at once; the relay sweeps up what a crash left queued.
        self.intake.deliver = self.relay.deliver
        # Everything loaded so far (modules, validators, compiled statements, the registry) lives as long as the
        # process: move it out of the garbage collector's generations, so that the full collections the hot
        # path's allocations trigger do not walk it again and again (they cost milliseconds each).
        gc.freeze()
        gc.set_threshold(*_GC_THRESHOLDS)
        supervisor.start("relay", lambda: self.relay.run(self._stop, settings.relay_poll_seconds))
        supervisor.start("inbound-consumer", lambda: self.consumer.run(self._stop, ready))
        supervisor.start("audit-checkpointer", lambda: self.checkpointer.run(self._stop))
        # daily, first run a few minutes after start (D-08)
        supervisor.start("retention", lambda: retention.run(self._stop))
        overview = OverviewKeeper(PrivacyOffice.for_gateway(self), ActivityTally(OVERVIEW_DAYS),
                                  settings.privacy_overview_count_every_seconds, settings.audit_verify_every_seconds)
        supervisor.start("privacy-overview", lambda: overview.run(self._stop))
        index = self.intake.consent_index
        supervisor.start("consent-index",
                         lambda: index.keep(self.store, self._stop, settings.consent_index_refresh_seconds))
        if settings.metrics_port is not None:  # sampled only where someone can scrape it
            sampler = StateSampler(self.metrics, self.store, self.bus, self.consumer.group_id,
                                   sorted(self.consumer.partner_of), settings.metrics_sample_seconds,
                                   member=lambda: self.consumer.progress.member)
            supervisor.start("metrics-sampler", lambda: sampler.run(self._stop))
        joined = asyncio.create_task(ready.wait())
        gave_up = asyncio.create_task(supervisor.fatal.wait())
        try:
            done, _ = await asyncio.wait({joined, gave_up}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        finally:
            joined.cancel()
            gave_up.cancel()
        if not ready.is_set():
            raise RuntimeError("the inbound consumer did not join its group within 60 s"
                               if not done else "a worker task failed repeatedly while starting")

    @property
    def failed(self) -> asyncio.Event | None:
        """Set when a supervised task failed beyond its restart limit: the process must stop, exit non-zero."""
        return self.supervisor.fatal if self.supervisor is not None else None

    async def stop(self) -> None:
        """Stop every task, then the bus, then the store, whatever fails on the way; then raise
        :class:`GatewayStopError` listing what failed, if anything did."""
        self.state = "stopping"
        self._stop.set()
        self.intake.deliver = None
        self.relay.wake()
        errors: list[Exception] = []
        if self.supervisor is not None:
            errors += [e if isinstance(e, Exception) else RuntimeError(repr(e)) for e in await self.supervisor.stop()]
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.close)
            self.metrics_server = None
        if self.observer.tracer is not None:
            await asyncio.to_thread(self.observer.tracer.shutdown)  # exports what is buffered
        for part, close in (("bus", self.bus.stop), ("store", self.store.close)):
            try:
                await close()
            except Exception as exc:  # the next part is closed all the same; reported below
                log.error(f"{part}-failed-to-close", error_type=type(exc).__name__, exc_info=True)
                errors.append(exc)
        self.state = "stopped"
        if errors:
            raise GatewayStopError(f"the gateway stopped with {len(errors)} failure(s)", errors)


def load_clients(path: Path) -> tuple[PartnerClient, ...]:
    """Partner clients from a YAML list of {client_id, organisation, role, scopes} each with either a
    ``secret_hash`` or ``public_jwks`` (a JWK or JWK Set: the client authenticates with ``private_key_jwt``)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(
        PartnerClient(client_id=c["client_id"], secret_hash=c.get("secret_hash"), organisation=c["organisation"],
                      role=c["role"], scopes=frozenset(c["scopes"]),
                      public_jwks=json.dumps(c["public_jwks"]) if c.get("public_jwks") is not None else None)
        for c in raw["clients"]
    )


def _assertion_claimer(store: Store) -> ClaimAssertion:
    """Records ``private_key_jwt`` assertion ids in the store, shared by every gateway process on it."""

    async def claim(client_id: str, jti: str, keep_until: datetime) -> bool:
        async with store.transaction() as tx:
            return await tx.claim_assertion_id(client_id, jti, keep_until, datetime.now(UTC))

    return claim


def _token_key_path(settings: GatewaySettings) -> Path:
    """The token-signing key file: the configured one, or the demo one under ``data_dir``."""
    return settings.token_signing_key_file or settings.data_dir / "token-signing-key.jwk.json"


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
    return read_token_keys(path.read_text(encoding="utf-8")).signing


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
                        max_poll_interval_ms=settings.kafka_max_poll_interval_ms, security=security)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedBus(settings.embedded_bus_path(), partitions=settings.topics.partitions)


def build(settings: GatewaySettings, *, clients: tuple[PartnerClient, ...] | None = None,
          signing_key: SigningKey | None = None, partners: Sequence[PartnerDescriptor] | None = None,
          registry: PolicyRegistry | None = None) -> Gateway:
    """Wire a gateway from ``settings``; ``clients`` and ``signing_key`` override the configured ones,
    ``partners`` the built-in partners' descriptors (:func:`gateway.partners.built_in`) and ``registry`` the
    packaged flow registry."""
    registry = registry or load_registry()
    partners = built_in() if partners is None else partners
    decoders, encoders = decoders_of(partners), encoders_of(partners)
    if clients is None:
        if settings.clients_file is None:
            if settings.environment == "production":
                raise RuntimeError("GATEWAY_CLIENTS_FILE must be set in production")
            clients = ()
        else:
            clients = load_clients(settings.clients_file)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = signing_key or _signing_key(settings)
    key_file = None if signing_key is not None else _token_key_path(settings)
    pseudonym_key = _pseudonym_key(settings)
    store = Store.connect(settings.resolved_database_url(), pseudonym_key)
    bus = _bus(settings)
    intake = Intake(store, registry, settings.topics, decoders, encoders, settings.instance_id,
                    settings.max_body_bytes, tokenise=Crosswalk(pseudonym_key).token)
    relay = Relay(store, bus, settings.instance_id, settings.relay_batch_size, registry=registry,
                  consent_index=intake.consent_index)
    intake.on_enqueued = relay.wake
    tracer = MessageTracer(otlp_provider()) if settings.tracing else None
    observer = PipelineObserver(GatewayMetrics(), tracer, settings.topics.prefix)
    consents = ConsentService(store, registry, settings.instance_id, settings.topics)
    consents.on_enqueued = relay.wake
    directory = ClientDirectory(clients, _client_loader(store, clients),
                                refresh_seconds=settings.clients_refresh_seconds)
    issuer = TokenIssuer(directory, key, settings.token_issuer, settings.token_audience, settings.token_ttl_seconds,
                         token_endpoint=settings.token_endpoint_url, claim_assertion=_assertion_claimer(store),
                         assertion_max_lifetime_seconds=settings.client_assertion_max_lifetime_seconds,
                         assertion_leeway_seconds=settings.client_assertion_leeway_seconds)
    consumer = InboundConsumer(intake, bus, settings.topics, sorted(decoders), max_records=settings.intake_batch_size)
    intake.observer = relay.observer = consumer.observer = observer
    gateway = Gateway(
        settings=settings,
        registry=registry,
        store=store,
        bus=bus,
        intake=intake,
        relay=relay,
        consumer=consumer,
        observer=observer,
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
        directory=directory,
        token_key_file=key_file,
    )
    gateway.reload_token_keys()  # publish and accept the retired keys the file still lists
    return gateway


def _client_loader(store: Store, seed: tuple[PartnerClient, ...]) -> LoadClients:
    """Reads the stored clients; the first time, it stores the seed clients the store does not hold yet (the
    YAML file seeds; what the store holds, e.g. a rotated secret or a disabled client, wins)."""
    seeded = False

    async def load() -> list[tuple[PartnerClient, datetime | None]]:
        nonlocal seeded
        async with store.transaction() as tx:
            if not seeded:
                now = datetime.now(UTC)
                for client in seed:
                    await tx.add_client(client, now)
            stored = await tx.registered_clients()
        seeded = True
        return stored

    return load
