"""The ``gateway`` command as an operator runs it: a worker that stops cleanly on SIGTERM or exits non-zero
naming the dependency it could not reach, the demo and the command that verifies the demo's audit log, and
read-only commands that create nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import REAL

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def test_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_BUS": "embedded"}
    worker = subprocess.Popen([*GATEWAY, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert worker.stderr is not None
        for line in iter(worker.stderr.readline, ""):
            if "worker-started" in line:
                break
        else:
            raise AssertionError("the worker exited before it started")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=45) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if worker.stderr is not None:
            worker.stderr.close()


def test_demo_once_prints_a_clean_summary_and_the_command_that_verifies_its_log(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "COLUMNS": "160"}
    done = subprocess.run([*GATEWAY, "demo", "--once", "--port", "0"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "forwarded to FWA" in done.stdout
    assert "denied: not-authorised" in done.stdout
    assert "intact" in done.stdout
    for flow in ("F1-outcome", "F2", "F3", "F4", "F5", "F10-comune"):  # all four partners, both ways
        assert flow in done.stdout
    demo_dir = (tmp_path / "demo").resolve()
    assert (demo_dir / "gateway.sqlite3").exists()

    # the summary alone: the gateway's JSON logs (the emergency override's warning among them) are in a file
    assert not [line for line in (done.stdout + done.stderr).splitlines() if line.lstrip().startswith("{")]
    logged = [json.loads(line) for line in (demo_dir / "demo.log").read_text(encoding="utf-8").splitlines()]
    assert any(entry.get("level") == "warning" for entry in logged)
    # the API stopped with the exchange: no address to a server that is gone
    assert "http://127.0.0.1" not in done.stdout

    [command] = re.findall(r"GATEWAY_DATA_DIR=(\S+) gateway audit verify", done.stdout)
    assert Path(command) == demo_dir
    verify = subprocess.run([*GATEWAY, "audit", "verify"], env={**os.environ, "GATEWAY_DATA_DIR": command},
                            capture_output=True, text=True, timeout=120, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = int(re.search(r"audit log intact: (\d+) records", verify.stdout).group(1))  # type: ignore[union-attr]
    assert records > 0

    # the default data directory holds no store: verify says so, points at the demo's, and creates nothing
    before = sorted(p.name for p in tmp_path.iterdir())
    elsewhere = subprocess.run([*GATEWAY, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120,
                               check=False)
    assert elsewhere.returncode == 2, elsewhere.stdout + elsewhere.stderr
    assert f"GATEWAY_DATA_DIR={demo_dir} gateway audit verify" in elsewhere.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_exits_non_zero_naming_the_database_it_waited_for(tmp_path: Path) -> None:
    port = _closed_port()
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_BUS": "embedded",
           "GATEWAY_DATABASE_URL": f"postgresql+asyncpg://gateway:not-a-secret@127.0.0.1:{port}/gateway",
           "GATEWAY_STARTUP_WAIT_SECONDS": "1", "GATEWAY_STARTUP_BACKOFF_MAX_SECONDS": "0.2"}
    done = subprocess.run([*GATEWAY, "worker"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"not started: the database at postgresql+asyncpg://gateway:***@127.0.0.1:{port}/gateway did not " \
           "answer within 1 s" in done.stderr
    assert "not-a-secret" not in done.stderr
    assert "waiting-for-database" in done.stderr  # it tried more than once, with back-off
    assert "Traceback" not in done.stderr


async def test_verify_on_a_postgres_database_without_the_schema_creates_nothing(
        tmp_path: Path, settings_for: Callable[..., Any]) -> None:
    settings = await settings_for(REAL)
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_DATABASE_URL": settings.database_url}
    done = await asyncio.to_thread(subprocess.run, [*GATEWAY, "audit", "verify"], env=env, capture_output=True,
                                   text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "holds no gateway schema" in done.stderr and "gateway migrate" in done.stderr
    assert os.listdir(tmp_path) == []  # no key generated
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            tables = (await conn.execute(text("select count(*) from pg_tables where schemaname = 'public'"))).scalar()
    finally:
        await engine.dispose()
    assert tables == 0


def test_serve_is_live_but_not_ready_while_it_waits_for_its_database(tmp_path: Path) -> None:
    http_port, db_port = _closed_port(), _closed_port()
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_BUS": "embedded",
           "GATEWAY_DATABASE_URL": f"postgresql+asyncpg://gateway:not-a-secret@127.0.0.1:{db_port}/gateway",
           "GATEWAY_STARTUP_WAIT_SECONDS": "300", "GATEWAY_STARTUP_BACKOFF_MAX_SECONDS": "0.5"}
    server = subprocess.Popen([*GATEWAY, "serve", "--port", str(http_port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "serve exited while waiting for its database"
            try:
                live = httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the API never listened"
                time.sleep(0.5)
        assert live.status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{http_port}/health/ready", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["failing"][0] == "gateway-starting"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_worker_exits_one_when_a_task_keeps_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash-only: a consumer that fails on every fetch is restarted up to the limit, then the worker stops
    everything and exits 1 instead of relaying on without intake."""
    from typer.testing import CliRunner

    from gateway.bus import BusUnavailable, EmbeddedBus
    from gateway.cli import app

    real_consumer = EmbeddedBus.consumer

    def failing_consumer(self: EmbeddedBus, group_id: str, topics: Any) -> Any:
        member = real_consumer(self, group_id, topics)

        async def fetch(timeout_s: float, max_records: int = 500) -> Any:
            raise BusUnavailable("embedded bus log: file is not a database (injected)", retriable=False)

        monkeypatch.setattr(member, "fetch", fetch)
        return member

    monkeypatch.setattr(EmbeddedBus, "consumer", failing_consumer)
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_BUS": "embedded", "GATEWAY_TASK_RESTART_LIMIT": "2",
           "GATEWAY_DATABASE_URL": ""}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    was_configured, config = structlog.is_configured(), structlog.get_config()
    try:
        done = CliRunner().invoke(app, ["worker"], env=env)
    finally:  # the command configured logging on the runner's temporary streams: put this process's back
        root.handlers, root.level = handlers, level
        if was_configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()
    assert done.exit_code == 1, done.output
    assert "inbound-consumer-gave-up" in done.output
    assert done.output.count("inbound-consumer-restarting") == 2
