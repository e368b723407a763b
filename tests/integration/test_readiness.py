"""Readiness that means something (issue 9, point 11): ``/health/ready`` is 503 and names the part that is
unusable — the database, the broker or the audit signer — on real PostgreSQL and a real Kafka broker that
really go away; liveness stays 200 throughout.

PostgreSQL is reached through a TCP forwarder the test cuts; the broker is one the test starts for itself
(``scripts/realinfra.py up --kafka-only``) and stops, since a broker's clients connect to the address it
advertises, which no forwarder can stand in for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from gateway.api import create_app
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.settings import GatewaySettings
from tests.conftest import REAL, Backends, harness_grants
from tests.integration.test_worker_supervision import free_port
from tests.kafka_access import CREDENTIALS_ENV, GATEWAY, KafkaAccess, access_from

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 90.0


async def readiness(gateway: Gateway) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway, manage_lifecycle=False)),
                                 base_url="https://testserver") as http:
        return await http.get("/health/ready")


async def liveness(gateway: Gateway) -> int:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway, manage_lifecycle=False)),
                                 base_url="https://testserver") as http:
        return (await http.get("/health")).status_code


async def until_not_ready(gateway: Gateway, part: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        answer = await readiness(gateway)
        if answer.status_code == 503 and part in answer.json()["failing"]:
            body: dict[str, Any] = answer.json()
            return body
        assert time.monotonic() < deadline, f"readiness never named {part}: {answer.text}"
        await asyncio.sleep(0.5)


class Forwarder:
    """A TCP forwarder to a real server that the test can cut, dropping every connection through it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        writers, self._writers = list(self._writers), set()
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, target_writer})
        await asyncio.gather(self._pipe(reader, target_writer), self._pipe(target_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self._writers.discard(writer)


@pytest.mark.parametrize("backends", [REAL, Backends("sqlite", "embedded")], ids=lambda b: b.id)
async def test_a_started_gateway_is_ready_and_says_every_part_is_usable(
        backends: Backends, settings_for: Callable[..., Any], clients: tuple[PartnerClient, ...]) -> None:
    gateway = build(await settings_for(backends), clients=clients)
    await gateway.start()
    try:
        answer = await readiness(gateway)
    finally:
        await gateway.stop()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["failing"]) == ("ready", [])
    assert (body["store_status"], body["bus_status"], body["signer_status"]) == ("ok", "ok", "ok")
    assert body["consumer"]["member"] is True
    assert set(body["workers"]) == {"relay", "inbound-consumer", "audit-checkpointer", "retention", "privacy-overview",
                                    "consent-index"}


async def test_readiness_names_the_store_when_postgres_stops_answering(
        settings_for: Callable[..., Any], clients: tuple[PartnerClient, ...]) -> None:
    settings: GatewaySettings = await settings_for(REAL)
    database = make_url(settings.resolved_database_url())
    forwarder = Forwarder(str(database.host), int(database.port or 5432))
    await forwarder.start()
    gateway = build(settings.model_copy(update={"database_url": database.set(
        host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False)}), clients=clients)
    await gateway.start()
    try:
        assert (await readiness(gateway)).status_code == 200
        await forwarder.cut()
        body = await until_not_ready(gateway, "store")
        assert body["store_status"] == "unavailable"
        assert body["bus_status"] == "ok"
        assert await liveness(gateway) == 200
    finally:
        await forwarder.start()  # back, so that the gateway can stop cleanly
        await gateway.stop()
        await forwarder.cut()
        await asyncio.sleep(0)  # let the closed transports release their sockets


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[KafkaAccess, subprocess.Popen[bytes]]]:
    """A Kafka broker of this test's own, so that the test can stop it: (how to reach and log in to it, its
    launcher)."""
    state = tmp_path / "broker.json"
    launcher = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "realinfra.py"), "up", "--kafka-only",
                                 "--state-file", str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not state.exists():
            assert launcher.poll() is None, "the broker did not start"
            assert time.monotonic() < deadline, "the broker did not start in time"
            time.sleep(0.5)
        env = json.loads(state.read_text(encoding="utf-8"))["env"]
        yield access_from(env["GATEWAY_TEST_KAFKA_BOOTSTRAP"], env.get(CREDENTIALS_ENV, "")), launcher
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=120)


@pytest.fixture
async def on_own_broker(own_broker: tuple[KafkaAccess, subprocess.Popen[bytes]], settings_for: Callable[..., Any],
                        clients: tuple[PartnerClient, ...]) -> AsyncIterator[tuple[Gateway, subprocess.Popen[bytes]]]:
    access, launcher = own_broker
    settings: GatewaySettings = await settings_for(REAL)
    await access.grant(harness_grants(settings.topics.prefix))
    gateway = build(settings.model_copy(update=access.settings(GATEWAY)), clients=clients)
    await gateway.start()
    try:
        yield gateway, launcher
    finally:
        with contextlib.suppress(Exception):  # the broker is gone: leaving the group may fail, closing may not
            await gateway.stop()


async def test_readiness_names_the_bus_when_the_kafka_broker_dies(
        on_own_broker: tuple[Gateway, subprocess.Popen[bytes]]) -> None:
    gateway, launcher = on_own_broker
    assert (await readiness(gateway)).status_code == 200
    launcher.send_signal(signal.SIGTERM)  # stops the broker
    await asyncio.to_thread(launcher.wait, 120)
    body = await until_not_ready(gateway, "bus")
    assert body["bus_status"] == "unavailable"
    assert body["store_status"] == "ok"
    assert await liveness(gateway) == 200


async def test_readiness_names_the_audit_signer_when_its_keys_cannot_be_read(
        settings_for: Callable[..., Any], clients: tuple[PartnerClient, ...]) -> None:
    gateway = build(await settings_for(REAL), clients=clients)
    await gateway.start()
    key_file = gateway.checkpointer.key_file
    kept = key_file.with_suffix(".kept")
    try:
        assert (await readiness(gateway)).status_code == 200
        os.replace(key_file, kept)
        body = await until_not_ready(gateway, "audit-signer")
        assert (body["signer_status"], body["signer_error"]) == ("unusable", "CheckpointSigningError")
        assert body["store_status"] == body["bus_status"] == "ok"
        os.replace(kept, key_file)
        answer = await readiness(gateway)
        assert answer.status_code == 200, answer.text
    finally:
        if kept.exists():
            os.replace(kept, key_file)
        await gateway.stop()
