"""Issue 10 point 18: schemathesis against a live gateway (``gateway serve``: uvicorn on a real socket), every
operation of the served OpenAPI document, as a partner and as a privacy officer, with the checks
``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance`` and
``response_schema_conformance``: no failure. Bounded in examples per operation so that it fits CI."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from gateway.settings import GatewaySettings
from tests.conftest import ALL_SCOPES, SECRET, Backends, bearer
from tests.kafka_access import login_env

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 25
"""Examples per operation and caller: 27 operations x 2 callers x up to 25 on each backend pair in CI."""
OFFICER_SCOPES = frozenset({"audit:verify", "privacy:report", "privacy:erase"})


@pytest.fixture(scope="module")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    return (
        PartnerClient("aler-test", secret_hash, "aler", "system", frozenset(ALL_SCOPES)),
        PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer", OFFICER_SCOPES),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(gateway_settings: GatewaySettings, clients: tuple[PartnerClient, ...], tmp: Path) -> Iterator[str]:
    """``gateway serve`` (uvicorn on a real socket) in its own process, on ``gateway_settings``' backends, with
    ``clients`` in its clients file; yields the base URL once it is ready. Its own process, because hypothesis
    refuses to generate while another thread of its process draws from ``random`` (aiokafka does)."""
    clients_file = tmp / "clients.yaml"
    clients_file.write_text(yaml.safe_dump({"clients": [
        {"client_id": c.client_id, "secret_hash": c.secret_hash, "organisation": c.organisation, "role": c.role,
         "scopes": sorted(c.scopes)} for c in clients]}), encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "GATEWAY_DATA_DIR": str(gateway_settings.data_dir), "GATEWAY_BUS": gateway_settings.bus,
           "GATEWAY_DATABASE_URL": gateway_settings.resolved_database_url(), "GATEWAY_CLIENTS_FILE": str(clients_file),
           "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": gateway_settings.kafka_bootstrap_servers,
           "GATEWAY_TOPICS__PREFIX": gateway_settings.topics.prefix,
           "GATEWAY_TOPICS__PARTITIONS": str(gateway_settings.topics.partitions), "GATEWAY_LOG_LEVEL": "WARNING",
           **login_env(gateway_settings)}
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            try:
                if httpx.get(f"{base_url}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield base_url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _token(base_url: str, client_id: str) -> dict[str, str]:
    response = httpx.post(f"{base_url}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, SECRET), timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _runner(operation: Any, base_url: str, session: requests.Session, headers: dict[str, str],
            organisation: str, seen: Counter[int]) -> Callable[[], None]:
    """A hypothesis test of ``operation`` as the caller of ``headers`` (raises on the first failure)."""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        if case.path_parameters and "partner" in case.path_parameters:
            case.path_parameters["partner"] = organisation  # reach the route, not only the 404
        response = case.call(base_url=base_url, session=session, headers=headers)
        seen[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    return run  # type: ignore[no-any-return]


def _fuzz(base_url: str, seen: Counter[int]) -> list[str]:
    """Every operation, as each caller; the failures found (empty when all is well); ``seen`` counts the
    answers by status."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    callers = {"partner": (_token(base_url, "aler-test"), "aler"),
               "officer": (_token(base_url, "dpo-test"), "gateway-privacy")}
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        for role, (headers, organisation) in callers.items():
            try:
                _runner(operation, base_url, session, headers, organisation, seen)()
            except Exception as exc:  # any failure of any operation: collected, then reported together
                inner = getattr(exc, "exceptions", ())
                failures.append(f"{operation.label} as {role}: {str(exc)[:1500]}"
                                + "".join(f"\n  - {str(e)[:1500]}" for e in inner))
    return failures


@pytest.mark.timeout(600)
async def test_18_schemathesis_finds_nothing_as_a_partner_or_as_a_privacy_officer(
    backends: Backends, settings_for: Callable[[Backends], object], clients: tuple[PartnerClient, ...],
    tmp_path: Path,
) -> None:
    gateway_settings: GatewaySettings = await settings_for(backends)  # type: ignore[misc]
    seen: Counter[int] = Counter()
    with served(gateway_settings, clients, tmp_path) as base_url:
        failures = await asyncio.to_thread(_fuzz, base_url, seen)
    assert failures == [], "\n\n".join(failures)
    # it did reach the routes: answers of every kind, successes included
    assert sum(seen.values()) >= 2 * 26 * 2, seen
    assert {200, 401, 403, 404, 422} <= set(seen) and seen[200] >= 20, seen


async def test_18_found_a_primitive_extension_that_is_not_an_object_is_refused_not_a_500(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    """What schemathesis found: fhir.resources raised AttributeError on ``"_language": "5"`` (500)."""
    body = {"resourceType": "Consent", "status": "active", "_language": "5"}
    for content_type in ("application/fhir+json", "application/fhir+json; fhirVersion=5.0"):
        response = await http.post("/v1/consents", json=body,
                                   headers={**await bearer(http, "aler-test"), "content-type": content_type})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
