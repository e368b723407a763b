"""Issue 10 point 13: partner clients kept in the store and managed with ``gateway clients`` (add, rotate-secret,
disable, list) while the gateway runs; a disabled client's next token request and its tokens already issued
are refused within seconds, without a restart, on the routes and at the HTTP edge alike. On both backend
pairs, with the command run as an operator runs it (a separate process on the same database)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

from gateway.auth import ClientDirectory
from gateway.bootstrap import Gateway, _client_loader
from tests.conftest import SECRET, bearer

GATEWAY = [sys.executable, "-m", "gateway.cli"]
WITHIN_SECONDS = 10.0
"""Generous bound for CI: the gateway reloads its clients every ``clients_refresh_seconds`` (2 s)."""


async def command(gateway: Gateway, *args: str) -> tuple[int, str]:
    """Run ``gateway clients ...`` on the test gateway's database; (exit code, stdout)."""
    env = {**os.environ, "GATEWAY_DATA_DIR": str(gateway.settings.data_dir),
           "GATEWAY_DATABASE_URL": gateway.settings.resolved_database_url(), "GATEWAY_BUS": "embedded"}
    env.pop("GATEWAY_CLIENTS_FILE", None)
    process = await asyncio.create_subprocess_exec(*GATEWAY, "clients", *args, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert b"Traceback" not in err, err.decode()
    return process.returncode or 0, out.decode()


async def within(check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until ``check()`` holds; fails after :data:`WITHIN_SECONDS`."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < WITHIN_SECONDS, "not within seconds"
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def token_status(http: httpx.AsyncClient, client_id: str, secret: str) -> int:
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    return response.status_code


def secret_of(output: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("client_secret: "))


async def test_13_clients_are_added_rotated_and_disabled_in_the_store_without_a_restart(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    code, out = await command(gateway, "list")
    assert code == 0 and "aler-test\taler\tsystem" in out and "\tenabled" in out  # seeded from the configuration
    assert "scrypt" not in out and SECRET not in out

    code, out = await command(gateway, "add", "newco-test", "--organisation", "comune", "--role", "system",
                              "--scope", "status:read", "--scope", "inbox:read")
    assert code == 0, out
    first = secret_of(out)
    await within(lambda: _is(token_status(http, "newco-test", first), 200))
    assert (await command(gateway, "add", "newco-test", "--organisation", "comune", "--role", "system",
                          "--scope", "status:read"))[0] == 1  # an id is never taken over

    code, out = await command(gateway, "rotate-secret", "newco-test")
    assert code == 0, out
    second = secret_of(out)
    await within(lambda: _is(token_status(http, "newco-test", first), 401))
    assert await token_status(http, "newco-test", second) == 200

    aler = await bearer(http, "aler-test")  # issued before the client is disabled
    assert (await http.get("/v1/partners/aler/inbox", headers=aler)).status_code == 200
    code, out = await command(gateway, "disable", "aler-test")
    assert code == 0 and out.strip() == "disabled: aler-test"

    async def refused() -> bool:
        inbox = await http.get("/v1/partners/aler/inbox", headers=aler)
        return inbox.status_code == 401

    await within(refused)
    inbox = await http.get("/v1/partners/aler/inbox", headers=aler)
    assert inbox.headers["content-type"].startswith("application/problem+json")
    assert "disabled" in inbox.json()["detail"]
    # the edge, which authenticates before reading a body, refuses it too
    submit = await http.post("/v1/partners/aler/messages", content=b'{"a": 1}',
                             headers={**aler, "content-type": "application/json"})
    assert submit.status_code == 401, submit.text
    assert await token_status(http, "aler-test", SECRET) == 401
    assert (await http.get("/v1/partners/comune/inbox", headers=await bearer(http, "comune-test"))).status_code == 200

    code, out = await command(gateway, "list")
    assert "aler-test\taler\tsystem" in out and "disabled since" in out
    assert (await command(gateway, "disable", "nobody-test"))[0] == 1

    # the configured clients only seed: a restart with the same configuration does not enable aler-test again
    restarted = ClientDirectory(gateway.clients, _client_loader(gateway.store, gateway.clients))
    await restarted.refresh(force=True)
    assert not restarted.is_active("aler-test") and restarted.is_active("comune-test")
    assert restarted.is_active("newco-test")


async def _is(status: Awaitable[int], expected: int) -> bool:
    return await status == expected
