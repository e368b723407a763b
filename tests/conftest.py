"""Shared fixtures: real backends named by environment variables, gateways wired on them, partner clients.

``GATEWAY_TEST_KAFKA_BOOTSTRAP`` and ``GATEWAY_TEST_POSTGRES_DSN`` are set by ``scripts/realinfra.py``
(the README's test command). Without them the Kafka and PostgreSQL cases skip locally and fail in CI
(``CI=true``): in CI no test that needs a real broker or database may skip.

The test broker authenticates clients and enforces ACLs (``tests/kafka_access.py``). Gateways built here log in as
the ``gateway`` principal. The tests also play the partners through the gateway's own bus (writing ``in.`` topics,
reading ``out.`` ones with their own groups), so the principal is granted every right on the test's own topic
prefix; ``tests/integration/test_kafka_acls.py`` proves the gateway works with exactly the production grants.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.api import create_app
from gateway.auth import PartnerClient, hash_client_secret
from gateway.bootstrap import Gateway, build
from gateway.bus.acls import AclOperation, AclResource, KafkaGrant
from gateway.settings import GatewaySettings, TopicSettings
from tests.hapi_validator import HapiValidator, ValidatorUnavailable
from tests.kafka_access import GATEWAY, kafka_access

KAFKA_ENV = "GATEWAY_TEST_KAFKA_BOOTSTRAP"
POSTGRES_ENV = "GATEWAY_TEST_POSTGRES_DSN"
SECRET = "test-secret-not-for-production"
ALL_SCOPES = ("messages:submit", "status:read", "inbox:read", "consent:write", "consent:read")


def require_env(name: str, what: str) -> str:
    """The variable's value; a skip locally, a failure in CI, when it is missing."""
    value = os.environ.get(name)
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not set: {what} tests must run in CI (use the README's test command)")
        pytest.skip(f"set {name} to run {what} tests (scripts/realinfra.py run -- pytest does)")
    return value


@pytest.fixture(scope="session")
def secret_hash() -> str:
    return hash_client_secret(SECRET)


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    """One system client per partner, plus an ALER client lacking the submit scope."""
    made = [
        PartnerClient(f"{org}-test", secret_hash, org, "system", frozenset(ALL_SCOPES))
        for org in ("aler", "asst", "comune", "fwa")
    ]
    made.append(PartnerClient("aler-readonly", secret_hash, "aler", "system", frozenset({"status:read"})))
    return tuple(made)


async def _fresh_postgres_database(dsn: str) -> tuple[str, Callable[[], object]]:
    """A new empty database on the test server; returns its URL and an async dropper."""
    url = make_url(dsn)
    name = f"gw_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await admin.dispose()

    async def drop() -> None:
        # Plain DROP first: it asks an autovacuum worker on the database to stop and waits for it, whereas
        # WITH (FORCE) refuses outright to signal that worker for a role that is not a superuser. FORCE is
        # only the last resort, for a connection the test left behind.
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for attempt in range(3):
                    try:
                        await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
                        return
                    except DBAPIError:
                        await asyncio.sleep(0.5 * (attempt + 1))
                await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await engine.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@dataclass
class Backends:
    """Which store and bus a test runs on."""

    store: str
    bus: str

    @property
    def id(self) -> str:
        return f"{self.store}+{self.bus}"


EMBEDDED = Backends("sqlite", "embedded")
REAL = Backends("postgres", "kafka")


def harness_grants(prefix: str) -> list[KafkaGrant]:
    """Every right on the test's own topics (prefix ``prefix``) and any group, for the gateway principal that
    the tests also use to play the partners."""
    principal = f"User:{GATEWAY}"
    operations = (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.CREATE)
    grants = [KafkaGrant(principal, AclResource.TOPIC, prefix, op, prefixed=True) for op in operations]
    return [*grants, KafkaGrant(principal, AclResource.GROUP, "*", AclOperation.READ)]


@pytest.fixture
async def settings_for(tmp_path: Path) -> AsyncIterator[Callable[[Backends], object]]:
    """Factory of settings on the requested backends; PostgreSQL databases are dropped afterwards."""
    droppers: list[Callable[[], object]] = []

    async def make(backends: Backends) -> GatewaySettings:
        # every integrity status verified afresh, so that a tampering test sees its edit at once
        updates: dict[str, object] = {"data_dir": tmp_path / "var", "bus": backends.bus,
                                      "privacy_integrity_max_age_seconds": 0}
        if backends.store == "postgres":
            url, drop = await _fresh_postgres_database(require_env(POSTGRES_ENV, "PostgreSQL"))
            droppers.append(drop)
            updates["database_url"] = url
        if backends.bus == "kafka":
            access = kafka_access(require_env(KAFKA_ENV, "Kafka"))
            topics = TopicSettings(prefix=f"t{uuid.uuid4().hex[:8]}.", partitions=2)
            await access.grant(harness_grants(topics.prefix))
            updates.update(access.settings(GATEWAY), topics=topics)
        return GatewaySettings(**updates)  # type: ignore[arg-type]

    yield make
    for drop in droppers:
        await drop()  # type: ignore[misc]


@pytest.fixture(params=[EMBEDDED, REAL], ids=lambda b: b.id)
def backends(request: pytest.FixtureRequest) -> Backends:
    return request.param  # type: ignore[no-any-return]


QUIET_CHECKPOINTER = pytest.mark.quiet_checkpointer
"""Mark a module or test whose gateway must sign audit checkpoints only when the test asks."""


@pytest.fixture
async def gateway(request: pytest.FixtureRequest, backends: Backends, settings_for: Callable[[Backends], object],
                  clients: tuple[PartnerClient, ...]) -> AsyncIterator[Gateway]:
    """A started gateway (relay and inbound consumer running) on each pair of backends; with the
    ``quiet_checkpointer`` mark its background checkpointer never signs on its own."""
    settings = await settings_for(backends)  # type: ignore[misc]
    if request.node.get_closest_marker("quiet_checkpointer") is not None:
        # T of 31 years: tests sign at fixed dates (weeks before the machine's clock), and a quiet checkpointer
        # must still find its last checkpoint too recent to sign again.
        settings = settings.model_copy(update={"audit_checkpoint_every_records": 10**9,
                                               "audit_checkpoint_every_seconds": 10**9})
    gw = build(settings, clients=clients)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the gateway's API (https base URL: the token endpoint refuses plain http)."""
    app = create_app(gateway, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        yield client


async def bearer(http: httpx.AsyncClient, client_id: str) -> dict[str, str]:
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, SECRET))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="session")
def hapi_validator() -> Iterator[HapiValidator]:
    """HAPI FHIR's R4 validator, one JVM for the whole session (built with Maven on first use). Without Java
    or Maven the tests using it skip locally and fail in CI (``CI=true``)."""
    try:
        validator = HapiValidator()
    except ValidatorUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"HAPI FHIR's validator is needed in CI: {exc}")
        pytest.skip(f"HAPI FHIR's validator is unavailable: {exc}")
    _HAPI_RUNS.append(validator)
    yield validator
    validator.close()


_HAPI_RUNS: list[HapiValidator] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The validator's figures at the end of the run: resources checked, errors found, JVM start time."""
    for validator in _HAPI_RUNS:
        terminalreporter.write_line(
            f"HAPI FHIR R4 validator: {validator.checked} resource(s) checked, {validator.errors_found} error(s) "
            f"in those meant to be valid ({validator.errors_expected} in examples broken on purpose), JVM ready in "
            f"{validator.startup_seconds:.1f} s")
