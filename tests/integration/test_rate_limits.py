"""Issue 10 point 11: rate limits on the token endpoint (per client, per address, lockout after repeated
failed authentications) and per-partner quotas on submit and read routes, answered 429 problem+json with
``Retry-After`` and RateLimit headers; limits are configuration."""

from __future__ import annotations

import httpx
import orjson
import pytest
from pydantic import ValidationError

import gateway.auth._authlib_server as authlib_server
from gateway.api import create_app
from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.settings import RateLimitSettings
from gateway.simulators import aler_arrears_message
from tests.conftest import SECRET

PERSON = next(t for t in generate_tenants("S", seed=31, limit=50) if t.arrears_cents > 0)


def limited(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, **limits: object) -> None:
    monkeypatch.setattr(gateway, "settings",
                        gateway.settings.model_copy(update={"rate_limits": RateLimitSettings(**limits)}))  # type: ignore[arg-type]


def client_from(gateway: Gateway, peer: str = "192.0.2.10") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(gateway, manage_lifecycle=False), client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://gw")


async def token(client: httpx.AsyncClient, client_id: str, secret: str = SECRET) -> httpx.Response:
    return await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))


def assert_429(response: httpx.Response, policy: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/too-many-requests")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-limit"]) >= 1 and int(response.headers["ratelimit-reset"]) >= 1
    assert response.headers["ratelimit-policy"].startswith(f'"{policy}"')
    assert "access_token" not in response.text


async def test_token_requests_are_limited_per_client(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    limited(gateway, monkeypatch, token_per_client="3/minute")
    async with client_from(gateway) as client:
        for _ in range(3):
            assert (await token(client, "aler-test")).status_code == 200
        assert_429(await token(client, "aler-test"), "token-client")
        assert (await token(client, "fwa-test")).status_code == 200  # another client is not held up


async def test_token_requests_are_limited_per_address(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    limited(gateway, monkeypatch, token_per_address="4/minute")
    async with client_from(gateway) as client:
        for client_id in ("aler-test", "fwa-test", "asst-test", "comune-test"):
            assert (await token(client, client_id)).status_code == 200
        assert_429(await token(client, "aler-readonly"), "token-address")


async def test_repeated_failures_lock_out_without_checking_the_secret(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    limited(gateway, monkeypatch, token_failures_before_lockout=3, token_lockout_seconds=120)
    checks: list[int] = []
    original = authlib_server.verify_client_secret

    def counted(secret: str, stored: str) -> bool:
        checks.append(1)
        return original(secret, stored)

    monkeypatch.setattr(authlib_server, "verify_client_secret", counted)
    async with TwoAddresses(gateway) as (attacker, elsewhere):
        for _ in range(3):
            assert (await token(attacker, "aler-test", "wrong")).status_code == 401
        assert_429(await token(attacker, "aler-test", "wrong"), "token-lockout")
        assert_429(await token(attacker, "fwa-test"), "token-lockout")  # the address is locked out
        assert_429(await token(elsewhere, "aler-test"), "token-lockout")  # and so is the client id
        assert len(checks) == 3  # nothing was checked once locked out: no scrypt spent on the attacker
        assert (await token(elsewhere, "fwa-test")).status_code == 200


class TwoAddresses:
    """Two clients of one app (one throttle) from two addresses."""

    def __init__(self, gateway: Gateway) -> None:
        app = create_app(gateway, manage_lifecycle=False)
        self.clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(peer, 40000)),
                                          base_url="https://gw") for peer in ("192.0.2.66", "192.0.2.77")]

    async def __aenter__(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return self.clients[0], self.clients[1]

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients:
            await client.aclose()


async def test_partner_quotas_on_reads_and_submissions(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    limited(gateway, monkeypatch, partner_read="3/minute", partner_submit="2/minute")
    async with client_from(gateway) as client:
        aler = {"Authorization": f"Bearer {(await token(client, 'aler-test')).json()['access_token']}"}
        fwa = {"Authorization": f"Bearer {(await token(client, 'fwa-test')).json()['access_token']}"}
        for _ in range(3):
            assert (await client.get("/v1/partners/aler/inbox", headers=aler)).status_code == 200
        assert_429(await client.get("/v1/partners/aler/inbox", headers=aler), "partner-read")
        assert_429(await client.get("/v1/partners/aler/messages/x", headers=aler), "partner-read")
        assert (await client.get("/v1/partners/fwa/inbox", headers=fwa)).status_code == 200  # per partner
        for n in range(2):  # submissions have their own quota
            body = orjson.dumps(aler_arrears_message(PERSON, f"q-{n}"))
            sent = await client.post("/v1/partners/aler/messages", content=body,
                                     headers={**aler, "content-type": "application/json"})
            assert sent.status_code == 202, sent.text
        body = orjson.dumps(aler_arrears_message(PERSON, "q-2"))
        assert_429(await client.post("/v1/partners/aler/messages", content=body,
                                     headers={**aler, "content-type": "application/json"}), "partner-submit")
    async with gateway.store.transaction() as tx:
        assert await tx.message("aler", "q-2") is None


def test_limits_are_configuration_and_malformed_rates_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RATE_LIMITS__PARTNER_SUBMIT", "7/second")
    from gateway.settings import GatewaySettings

    assert GatewaySettings().rate_limits.partner_submit == "7/second"
    with pytest.raises(ValidationError):
        RateLimitSettings(token_per_client="lots")
