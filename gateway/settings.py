"""The one configuration object of the gateway, read once from the environment (prefix ``GATEWAY_``).

Nothing else in the code base reads ``os.environ``: the composition root builds :class:`GatewaySettings`
and passes it (or the parts it needs) down. Defaults are the embedded single-machine demo: the SQLite
store and the SQLite-backed embedded bus under ``./var``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsoleOidcSettings", "GatewaySettings", "OidcGroupMapping", "RateLimitSettings", "TopicSettings"]


class TopicSettings(BaseSettings):
    """Kafka topic naming and sizing (architecture.md, "Kafka conventions")."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_TOPIC_", extra="ignore")

    prefix: str = ""
    """Prepended to every topic name, so that several deployments or test runs can share one cluster."""
    partitions: int = Field(default=3, ge=1)
    """Partitions of every partner topic; the key is the subject pseudonym so a person's events stay ordered."""
    replication_factor: int = Field(default=1, ge=1)
    """Replication factor for topics the gateway creates (3 in the production compose file)."""

    def name(self, kind: str, partner: str) -> str:
        """Topic for ``kind`` (in, out, status, dlq) of ``partner``, e.g. ``in.aler``."""
        return f"{self.prefix}{kind}.{partner}"

    def consent_events(self) -> str:
        """The compacted topic of consent events."""
        return f"{self.prefix}gateway.consent-events"


class RateLimitSettings(BaseSettings):
    """Rate limits of the HTTP API (``GATEWAY_RATE_LIMITS__...``), as ``limits`` rates such as ``60/minute``;
    counted per API process (:mod:`gateway.api.throttle`)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_RATE_LIMITS__", extra="ignore")

    enabled: bool = True
    """Off only for load tests: with it off nothing is counted and no lockout happens."""
    token_per_client: str = "60/minute"
    """Token requests naming one client id."""
    token_per_address: str = "300/minute"
    """Token requests from one address (behind a trusted proxy: the address it forwarded for)."""
    token_failures_before_lockout: int = Field(default=10, ge=1)
    """Failed client authentications, per client id and per address, within ``token_failure_window_seconds``
    that lock it out."""
    token_failure_window_seconds: int = Field(default=300, ge=1)
    token_lockout_seconds: int = Field(default=300, ge=1)
    """How long a locked-out client id or address is answered 429 without its secret being checked."""
    partner_submit: str = "1200/minute"
    """Messages, dry runs and acknowledgements one partner may send (all its clients together)."""
    partner_read: str = "2400/minute"
    """Status and inbox reads of one partner."""

    @field_validator("token_per_client", "token_per_address", "partner_submit", "partner_read")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate such as '60/minute': {exc}") from None
        return value


class OidcGroupMapping(BaseModel):
    """One rule of the console's single sign-on: people the provider puts in ``group`` (a value of the ID token's
    groups claim, e.g. Keycloak's group path ``/aler/privacy-officers``) sign in for ``organisation`` with
    ``roles``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str = Field(min_length=1)
    organisation: str = Field(min_length=1)
    """A partner code (aler, comune, ...) or the gateway's data protection office (``data_protection_office``)."""
    roles: tuple[str, ...] = Field(min_length=1)
    """Console roles, e.g. ``["privacy-officer"]``."""


class ConsoleOidcSettings(BaseSettings):
    """Single sign-on of console officers through an OpenID Connect provider (``GATEWAY_CONSOLE_OIDC_...``;
    ``docs/console-sso.md``). Off while ``issuer`` is unset: officers then sign in with local accounts only."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_CONSOLE_OIDC_", extra="ignore")

    issuer: str | None = None
    """The provider's issuer URL (e.g. ``https://id.example/realms/gateway``); its discovery document is read
    from ``<issuer>/.well-known/openid-configuration`` and must name the same issuer."""
    client_id: str = "gateway-console"
    client_secret_file: Path | None = None
    """File holding the console client's secret (a confidential client: the secret authenticates it at the token
    endpoint and keys the encryption of the sign-in in progress). Required when ``issuer`` is set."""
    scopes: str = "openid"
    """Scopes asked for. ``openid`` alone keeps names out of the ID token (which goes back to the provider at
    sign-out); the display name comes from the userinfo endpoint."""
    groups_claim: str = "groups"
    """The ID token claim listing the person's groups or roles; dots walk into objects
    (``realm_access.roles``)."""
    mappings: tuple[OidcGroupMapping, ...] = ()
    """Which groups sign in for which organisation with which roles, as JSON, e.g.
    ``[{"group": "/aler/privacy-officers", "organisation": "aler", "roles": ["privacy-officer"]}]``. A person none
    of whose groups is mapped, or whose groups map to two organisations, is refused (and the refusal audited)."""
    redirect_uri: str | None = None
    """The callback URL registered at the provider (``https://<host>/console/sso/callback``); derived from the
    request when unset."""
    post_logout_redirect_uri: str | None = None
    """Where the provider sends the officer after sign-out (registered at the provider); the console's sign-in
    page, derived from the request, when unset."""
    button_label: str | None = None
    """Text of the sign-in page's button; "Accedi con SPID/CIE (Keycloak)" (and its English) when unset."""
    http_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    """Leeway when checking the ID token's ``exp`` and ``iat``."""

    @field_validator("issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> ConsoleOidcSettings:
        if self.issuer is None:
            return self
        if self.client_secret_file is None:
            raise ValueError("GATEWAY_CONSOLE_OIDC_ISSUER needs GATEWAY_CONSOLE_OIDC_CLIENT_SECRET_FILE")
        if not self.mappings:
            raise ValueError("GATEWAY_CONSOLE_OIDC_ISSUER needs GATEWAY_CONSOLE_OIDC_MAPPINGS (no one could sign in)")
        if "openid" not in self.scopes.split():
            raise ValueError("GATEWAY_CONSOLE_OIDC_SCOPES must include openid")
        return self

    @property
    def enabled(self) -> bool:
        return self.issuer is not None


class GatewaySettings(BaseSettings):
    """Every setting the gateway reads. See docs/operators.md "Configuration" for the production values."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["demo", "production"] = "demo"
    """``production`` refuses to start without explicit keys and client registry (fail closed)."""
    instance_id: str = Field(default_factory=socket.gethostname)
    """Names this process in audit records (``gateway instance``) and as Kafka client id; the host name by
    default, so replicas differ."""

    data_dir: Path = Path("var")
    """Where the embedded defaults keep their files (SQLite store, embedded bus, generated demo keys)."""
    database_url: str | None = None
    """SQLAlchemy async URL: ``postgresql+asyncpg://...`` in production; SQLite under ``data_dir`` if unset."""

    bus: Literal["embedded", "kafka"] = "embedded"
    """Which bus implementation to use."""
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated Kafka bootstrap servers (used when ``bus`` is ``kafka``)."""
    kafka_max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    """How long the inbound consumer may spend on one batch (a store outage included) before its group counts
    it gone and gives its partitions to another member; it rejoins at its next fetch, and the batch is read
    again (the replay guard absorbs the repeat)."""
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How the gateway connects to Kafka: ``SASL_SSL`` in production (brokers enforce per-principal ACLs, see
    docs/integrators.md "Kafka conventions"); ``SASL_PLAINTEXT`` only on loopback or a trusted network;
    ``PLAINTEXT`` (no authentication) only for a broker without authentication."""
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    """SASL mechanism when ``kafka_security_protocol`` is ``SASL_*``."""
    kafka_sasl_username: str | None = None
    """The gateway's Kafka principal (``User:<name>`` in the brokers' ACLs)."""
    kafka_sasl_password: SecretStr | None = None
    """The gateway principal's password (from a secret, never from the compose file)."""
    kafka_ssl_cafile: Path | None = None
    """CA certificates of the brokers' TLS certificates (``SASL_SSL``); the system's store when unset."""
    topics: TopicSettings = Field(default_factory=TopicSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest request body or Kafka message the gateway accepts; larger ones are refused, never truncated."""
    max_json_depth: int = Field(default=64, ge=8, le=512)
    """Deepest nesting of arrays and objects an HTTP JSON body may have (refused with 400 beyond it)."""
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    """Addresses (or networks) of reverse proxies whose ``X-Forwarded-Proto`` and ``X-Forwarded-For`` the token
    endpoint believes, e.g. ``GATEWAY_TRUSTED_PROXIES='["10.0.0.5/32"]'``. From any other peer those headers
    are ignored: the scheme and address are the connection's own. Empty by default: no proxy is trusted."""

    token_issuer: str = "https://gateway.quartieri.example/"
    token_audience: str = "quartieri-gateway"
    token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    token_endpoint_url: str | None = None
    """The token endpoint's public URL, the only ``aud`` a ``private_key_jwt`` client assertion may name (as the
    client reaches it, e.g. ``https://gateway.quartieri.example/oauth/token``); by default ``token_issuer``
    followed by ``oauth/token``."""
    client_assertion_max_lifetime_seconds: int = Field(default=300, ge=10, le=3600)
    """How far ahead a client assertion's ``exp`` may be (from now, and from its ``iat``); its ``jti`` is kept
    in the store, to refuse a replay, until then."""
    client_assertion_leeway_seconds: int = Field(default=30, ge=0, le=300)
    """Clock skew allowed between a client and the gateway on an assertion's ``exp``, ``iat`` and ``nbf``."""
    token_signing_key_file: Path | None = None
    """Private JWK (JSON) that signs access tokens. Generated under ``data_dir`` in demo mode if unset."""
    clients_file: Path | None = None
    """YAML list of partner clients (client id, secret hash, organisation, role, scopes). It seeds the store's
    clients: those the store does not hold yet are added at start; ``gateway clients`` manages them after."""
    clients_refresh_seconds: float = Field(default=2.0, ge=0, le=60)
    """How old a process's view of the stored clients may get: a client disabled (or given a new secret) in
    the store is refused by every running process within this many seconds, tokens already issued included."""

    pseudonym_key: SecretStr | None = None
    """Secret that keys the lookup of a person's pseudonym. Generated under ``data_dir`` in demo mode if unset."""
    audit_origin: str = "quartieri-gateway/audit"
    """Origin line of signed audit checkpoints."""
    audit_signing_key_file: Path | None = None
    """Private keys that sign audit checkpoints: C2SP ``PRIVATE+KEY+...`` lines, the current key first (any
    others co-sign during a key rotation). Named after ``audit_origin``. Generated under ``data_dir`` in demo
    mode if unset; required in production. ``gateway audit rotate-key`` rewrites it."""
    audit_checkpoint_every_records: int = Field(default=1000, ge=1)
    """Sign a checkpoint once this many audit records were added since the last one."""
    audit_checkpoint_every_seconds: float = Field(default=10.0, gt=0)
    """Sign a checkpoint this long after the last one, if any audit record was added since."""
    privacy_integrity_max_age_seconds: float = Field(default=300.0, ge=0)
    """How long the integrity status that privacy-officer answers carry may be reused: a full verification
    reads every record (about 30-50 s per million), so answers carry the newest stored one, which says when it
    was made (``checked_at``) and how many records it covered; once it is older than this, an answer still
    carries it and a new verification starts in the background. 0: verify for every answer."""
    audit_verify_every_seconds: float = Field(default=3600.0, gt=0)
    """Workers verify the whole audit log and store the outcome when the newest stored one is older than this
    (and at start when none is stored), so that no officer's answer waits for a verification."""
    privacy_overview_count_every_seconds: float = Field(default=5.0, gt=0)
    """Workers count the audit records appended since the last count into the stored 30-day tally of the
    console's home this often."""
    consent_index_refresh_seconds: float = Field(default=1.0, gt=0)
    """Workers bring their consent index (:mod:`gateway.consents.index`) up to the store's latest consent
    version this often between batches; a batch does it anyway before it decides, so this only spares the
    first batch after a change the reload."""

    data_protection_office: str = "gateway-privacy"
    """The organisation of the gateway's own data protection office: its officers' ``privacy:report`` answers
    cover every organisation; any other organisation's officers see only what it sent, received or recorded."""
    controller_name: str = "Consorzio Quartieri - gateway di interoperabilità"
    """Who the printable art. 15 report names as the controller of the gateway's processing."""
    dpo_contact: str = "dpo@quartieri.example"
    """The data protection contact the printable art. 15 report names (an address or a mailbox)."""

    console_plain_http: bool = False
    """Console session cookie without ``Secure`` (a console reached over plain http on a developer's machine
    only). Off by default: the cookie is sent over https alone."""
    console_session_idle_seconds: int = Field(default=900, ge=60, le=86_400)
    """A console session unused this long ends; the officer signs in again."""
    console_session_absolute_seconds: int = Field(default=8 * 3600, ge=300, le=7 * 86_400)
    """A console session ends this long after sign-in, used or not."""
    console_sign_in_failures_before_lockout: int = Field(default=5, ge=1)
    """Failed local sign-ins, per account and per address, within ``console_sign_in_failure_window_seconds``
    that lock it out for ``console_lockout_seconds``."""
    console_sign_in_failure_window_seconds: int = Field(default=900, ge=1)
    console_lockout_seconds: int = Field(default=900, ge=1)
    console_oidc: ConsoleOidcSettings = Field(default_factory=ConsoleOidcSettings)
    """Single sign-on of console officers through an OpenID Connect provider (off unless its issuer is set)."""
    erasure_approval_window_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    """How long an erasure request waits for a second, different officer's approval before it lapses."""

    startup_wait_seconds: float = Field(default=120.0, ge=0)
    """How long a starting gateway waits for its database and bus to answer (with growing back-off, not ready
    meanwhile) before it gives up naming the one it could not reach. 0: try once."""
    startup_backoff_max_seconds: float = Field(default=5.0, gt=0)
    """Longest pause between two attempts to reach the database or the bus while starting."""
    task_restart_limit: int = Field(default=5, ge=0)
    """How many times in a row a long-running task (relay, inbound consumer, checkpointer, retention) that ends
    unexpectedly is restarted, with back-off, before the process gives up and exits non-zero. A task that ran
    for ``task_healthy_after_seconds`` since its last restart starts counting again from zero."""
    task_restart_backoff_max_seconds: float = Field(default=30.0, gt=0)
    """Longest pause before restarting a task that ended unexpectedly (the pause doubles from 0.5 s)."""
    task_healthy_after_seconds: float = Field(default=60.0, gt=0)
    """A restarted task that has run this long is healthy again: its count of restarts in a row resets."""

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """TCP port of the Prometheus metrics endpoint (``/metrics``, :mod:`gateway.observability.metrics`), served by
    a thread of its own beside the API and the workers; unset (the default): no endpoint, no port opened. 0
    takes any free port. The endpoint has no authentication: bind it to a network only the monitoring can
    reach (no metric names a person; see docs/operations.md)."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics endpoint listens on; ``0.0.0.0`` in a container whose port only Prometheus reaches."""
    metrics_sample_seconds: float = Field(default=15.0, gt=0)
    """How often a worker process serving metrics samples the state gauges (outbox backlog and its oldest row,
    consumer lag, audit size and last checkpoint, consents) from the database and the broker."""
    tracing: bool = False
    """Export OpenTelemetry traces (one per message, :mod:`gateway.observability.tracing`) over OTLP. Off by
    default; the exporter is configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers,
    protocol ``http/protobuf``) and ``OTEL_SERVICE_NAME``."""

    intake_batch_size: int = Field(default=500, ge=1, le=2000)
    """Most ``in.<partner>`` records a worker fetches and decides in one transaction: larger batches spread each
    transaction's fixed cost over more messages under load; a lone message is decided alone either way. 500
    forwarded 3-6 % more referrals than 200 with one worker and with two (``bench/README.md``)."""
    relay_batch_size: int = Field(default=200, ge=1)
    relay_poll_seconds: float = Field(default=0.5, gt=0)
    """How often the relay sweeps the outbox unasked, for rows queued more than half a second before that no worker
    delivered (a crash or an outage between a commit and its delivery, a process without workers). A worker
    delivers its own batches straight after their commit, and whatever queues rows without delivering them (a
    consent change, a failed delivery) wakes the relay at once; this bounds how late it sees the rest."""
    statistics_threshold: int = Field(default=5, ge=3)
    """Smallest number of events a published statistics cell may stand for (F6, F13); smaller cells are
    suppressed. Never below 3: a cell of one or two would single people out."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Root log level. Database and broker drivers stay at WARNING whatever it is (their DEBUG lines carry SQL
    parameters); ``DEBUG`` is refused in production."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("kafka_bootstrap_servers must name at least one host:port")
        return value

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> GatewaySettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"GATEWAY_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "GATEWAY_KAFKA_SASL_USERNAME and GATEWAY_KAFKA_SASL_PASSWORD"
            )
        return self

    @model_validator(mode="after")
    def _production_keys_are_strong(self) -> GatewaySettings:
        key = self.pseudonym_key.get_secret_value() if self.pseudonym_key else None
        if self.environment == "production" and key is not None and len(key) < 32:
            raise ValueError("GATEWAY_PSEUDONYM_KEY must be at least 32 characters in production")
        if self.environment == "production" and self.log_level == "DEBUG":
            raise ValueError("GATEWAY_LOG_LEVEL=DEBUG is refused in production: debug output may carry personal data")
        return self

    def resolved_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"

    def embedded_bus_path(self) -> Path:
        """File of the embedded bus log."""
        return self.data_dir / "bus.sqlite3"
