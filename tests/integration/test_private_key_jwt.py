"""Issue 10 point 14 (first half): ``private_key_jwt`` client authentication at the token endpoint (RFC 7523
client assertions signed with a key registered for the client), the way PDND clients authenticate. A valid
assertion gets a token with the client's scopes; a wrong key, an expired or too long-lived assertion, a future
``iat`` or ``nbf``, a wrong ``aud``, ``iss`` != ``sub``, ``alg`` none or HS256 keyed with the public key, a
replayed ``jti`` (on the same process and on a second one sharing the store), an assertion for a client with a
secret and a secret for a client with keys are all refused with a bare ``invalid_client``, logged at WARNING and
counted towards the lockout. On both backend pairs (SQLite and PostgreSQL stores)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from gateway.api import create_app
from gateway.auth import PartnerClient
from gateway.auth.client_assertion import CLIENT_ASSERTION_TYPE
from gateway.bootstrap import Gateway, build
from gateway.settings import RateLimitSettings
from tests.conftest import SECRET
from tests.integration.test_clients import _is, command, within
from tests.log_capture import log_output  # noqa: F401

EC_KEY = ECKey.generate_key("P-256", private=True)
ED_KEY = OKPKey.generate_key("Ed25519", private=True)
RSA_KEY = RSAKey.generate_key(2048, private=True)
OTHER_EC_KEY = ECKey.generate_key("P-256", private=True)
for _key in (EC_KEY, ED_KEY, RSA_KEY):
    _key.ensure_kid()
KEY_SCOPES = frozenset({"messages:submit", "status:read", "inbox:read"})
GENERIC = ("Client authentication failed. Send a valid client_id and client_secret (HTTP Basic or the form body), "
           "or a client assertion signed with your registered key (private_key_jwt).")


def public_jwks(*keys: Key) -> str:
    return json.dumps({"keys": [dict(k.as_dict(private=False)) for k in keys]})


@pytest.fixture(scope="session")
def clients(clients: tuple[PartnerClient, ...]) -> tuple[PartnerClient, ...]:
    """The shared secret clients, plus clients registered with an EC, an Ed25519 and an RSA public key."""
    return (*clients,
            PartnerClient("aler-keys", None, "aler", "system", KEY_SCOPES, public_jwks=public_jwks(EC_KEY)),
            PartnerClient("fwa-keys", None, "fwa", "system", frozenset({"status:read"}),
                          public_jwks=public_jwks(ED_KEY)),
            PartnerClient("comune-keys", None, "comune", "system", KEY_SCOPES, public_jwks=public_jwks(RSA_KEY)))


def assertion(key: Key, client_id: str, audience: str, *, alg: str = "ES256", iss: str | None = None,
              exp_in: int = 60, iat_in: int = 0, jti: str | None = None, **extra: Any) -> str:
    """A client assertion; a claim given as None or "" is left out, and so is the header's kid for a key without."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": iss or client_id, "sub": client_id, "aud": audience, "iat": now + iat_in,
                              "exp": now + exp_in, "jti": uuid.uuid4().hex if jti is None else jti, **extra}
    header = {"alg": alg, **({"kid": key.kid} if key.kid else {})}
    return jwt.encode(header, {k: v for k, v in claims.items() if v not in (None, "")}, key, algorithms=[alg])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(alg: str, client_id: str, audience: str, secret: bytes = b"") -> str:
    """An assertion with valid claims an attacker builds by hand (joserfc refuses to): ``alg: none`` with no
    signature, or HS256 keyed with ``secret`` (the client's public key, which anyone can read)."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    signing_input = f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if alg == "HS256" else b""
    return f"{signing_input}.{_b64(signature)}"


def _raw(header: Any, claims: Any) -> str:
    """A JWT-shaped string with any header and payload, and a junk signature."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(b'junk')}"


def form(signed: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": signed, **extra}


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


def refused(response: httpx.Response) -> bool:
    """A bare RFC 6749 invalid_client: 401, nothing said about what failed, no token."""
    return (response.status_code == 401 and response.json() == {"error": "invalid_client", "error_description": GENERIC}
            and "access_token" not in response.text)


@pytest.fixture
async def token_url(gateway: Gateway) -> str:
    return gateway.issuer.token_endpoint


@pytest.fixture
async def unlimited(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's API with rate limits off, so that many refusals in a row are not answered by a lockout."""
    monkeypatch.setattr(gateway, "settings",
                        gateway.settings.model_copy(update={"rate_limits": RateLimitSettings(enabled=False)}))
    app = create_app(gateway, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        yield client


@pytest.fixture
async def second(gateway: Gateway, clients: tuple[PartnerClient, ...]) -> AsyncIterator[httpx.AsyncClient]:
    """Another gateway process's API on the same store (and the same configuration)."""
    other = build(gateway.settings, clients=clients)
    app = create_app(other, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://other") as client:
            yield client
    finally:
        await other.store.close()


async def test_14_a_valid_assertion_gets_a_token_with_the_clients_scopes(
    gateway: Gateway, http: httpx.AsyncClient, token_url: str
) -> None:
    assert token_url == "https://gateway.quartieri.example/oauth/token"  # the default: the issuer's endpoint
    for key, client_id, alg, scopes in ((EC_KEY, "aler-keys", "ES256", KEY_SCOPES),
                                        (ED_KEY, "fwa-keys", "Ed25519", {"status:read"}),
                                        (RSA_KEY, "comune-keys", "RS256", KEY_SCOPES),
                                        (RSA_KEY, "comune-keys", "PS256", KEY_SCOPES)):
        response = await http.post("/oauth/token", data=form(assertion(key, client_id, token_url, alg=alg)))
        assert response.status_code == 200, (alg, response.text)
        claims = claims_of(response.json()["access_token"])
        assert (claims["client_id"], set(claims["scope"].split())) == (client_id, scopes), alg
    # the client_id may be repeated in the form (RFC 7521 §4.2) and a narrower scope asked for
    narrower = await http.post("/oauth/token", data=form(assertion(EC_KEY, "aler-keys", token_url),
                                                         client_id="aler-keys", scope="inbox:read"))
    assert narrower.status_code == 200 and narrower.json()["scope"] == "inbox:read"
    inbox = await http.get("/v1/partners/aler/inbox",
                           headers={"Authorization": f"Bearer {narrower.json()['access_token']}"})
    assert inbox.status_code == 200


async def test_14_forged_expired_misaddressed_and_replayed_assertions_are_refused(
    gateway: Gateway, unlimited: httpx.AsyncClient, token_url: str
) -> None:
    http = unlimited
    public_pem = EC_KEY.as_pem(private=False)
    registered = next(c.public_jwks for c in gateway.clients if c.client_id == "aler-keys")
    assert registered is not None
    cases = {
        "wrong key (no kid)": assertion(OTHER_EC_KEY, "aler-keys", token_url),
        "wrong key, the registered key's kid": jwt.encode(
            {"alg": "ES256", "kid": EC_KEY.kid}, claims_of(assertion(EC_KEY, "aler-keys", token_url)), OTHER_EC_KEY),
        "expired": assertion(EC_KEY, "aler-keys", token_url, exp_in=-120, iat_in=-180),
        "lives too long": assertion(EC_KEY, "aler-keys", token_url, exp_in=3600),
        "exp far after iat": assertion(EC_KEY, "aler-keys", token_url, exp_in=200, iat_in=-400),
        "no exp": assertion(EC_KEY, "aler-keys", token_url, exp=None),
        "future iat": assertion(EC_KEY, "aler-keys", token_url, iat_in=300, exp_in=310),
        "future nbf": assertion(EC_KEY, "aler-keys", token_url, nbf=int(time.time()) + 300),
        "wrong aud": assertion(EC_KEY, "aler-keys", "https://elsewhere.example/oauth/token"),
        "the access tokens' aud": assertion(EC_KEY, "aler-keys", gateway.settings.token_audience),
        "the issuer as aud": assertion(EC_KEY, "aler-keys", gateway.settings.token_issuer),
        "iss is not sub": assertion(EC_KEY, "aler-keys", token_url, iss="comune-keys"),
        "no jti": assertion(EC_KEY, "aler-keys", token_url, jti=""),
        "alg none": forged("none", "aler-keys", token_url),
        "HS256 keyed with the public key (PEM)": forged("HS256", "aler-keys", token_url, public_pem),
        "HS256 keyed with the public key (JWK)": forged("HS256", "aler-keys", token_url,
                                                        public_jwks(EC_KEY).encode()),
        "HS256 keyed with the registered text": forged("HS256", "aler-keys", token_url, registered.encode()),
        "unknown client": assertion(EC_KEY, "nobody-keys", token_url),
        "disabled-or-secret client (assertion for a secret-only client)": assertion(EC_KEY, "aler-test", token_url),
        "client_id not the sub": assertion(EC_KEY, "aler-keys", token_url),
        "not a JWT": "not.a.jwt",
        "no alg": _raw({"kid": EC_KEY.kid}, {"sub": "aler-keys"}),
        "alg not a string": _raw({"alg": 7, "kid": EC_KEY.kid}, {"sub": "aler-keys"}),
        "claims not an object": _raw({"alg": "ES256"}, ["aler-keys"]),
        "sub not a string": _raw({"alg": "ES256"}, {"sub": ["aler-keys"]}),
        "exp not a number": assertion(EC_KEY, "aler-keys", token_url, exp="soon"),
        "exp huge": assertion(EC_KEY, "aler-keys", token_url, exp=10**30),
        "jti not a string": assertion(EC_KEY, "aler-keys", token_url, jti=7),  # type: ignore[arg-type]
        "jti too long": assertion(EC_KEY, "aler-keys", token_url, jti="j" * 129),
    }
    for name, signed in cases.items():
        extra = {"client_id": "comune-keys"} if name == "client_id not the sub" else {}
        response = await http.post("/oauth/token", data=form(signed, **extra))
        assert refused(response), (name, response.status_code, response.text)

    # a replayed jti: the same assertion, and a new assertion reusing an accepted jti
    first = assertion(EC_KEY, "aler-keys", token_url, jti="once-only")
    assert (await http.post("/oauth/token", data=form(first))).status_code == 200
    assert refused(await http.post("/oauth/token", data=form(first)))
    assert refused(await http.post("/oauth/token", data=form(assertion(EC_KEY, "aler-keys", token_url,
                                                                        jti="once-only"))))
    # another client may use the same jti: ids are the client's own
    assert (await http.post("/oauth/token", data=form(assertion(RSA_KEY, "comune-keys", token_url, alg="PS256",
                                                                 jti="once-only")))).status_code == 200

    # a secret never authenticates a client registered with keys, with Basic or in the form
    basic = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("aler-keys", SECRET))
    post = await http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "aler-keys",
                                                 "client_secret": SECRET})
    assert refused(basic) and refused(post)
    # and sending both a secret and an assertion is a malformed request
    both = await http.post("/oauth/token", data=form(assertion(EC_KEY, "aler-keys", token_url)),
                           auth=("aler-test", SECRET))
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    # the secret clients still work as before
    assert (await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                            auth=("aler-test", SECRET))).status_code == 200


async def test_14_a_replay_is_refused_by_a_second_gateway_process_on_the_same_store(
    gateway: Gateway, http: httpx.AsyncClient, second: httpx.AsyncClient, token_url: str
) -> None:
    signed = assertion(EC_KEY, "aler-keys", token_url)
    assert (await http.post("/oauth/token", data=form(signed))).status_code == 200
    assert refused(await second.post("/oauth/token", data=form(signed)))
    # the other way round, and at the same moment: exactly one of the two processes hands out a token
    signed = assertion(EC_KEY, "aler-keys", token_url)
    assert (await second.post("/oauth/token", data=form(signed))).status_code == 200
    assert refused(await http.post("/oauth/token", data=form(signed)))
    for _ in range(3):
        signed = assertion(RSA_KEY, "comune-keys", token_url, alg="RS256")
        answers = await asyncio.gather(http.post("/oauth/token", data=form(signed)),
                                       second.post("/oauth/token", data=form(signed)))
        assert sorted(a.status_code for a in answers) == [200, 401], [a.text for a in answers]


async def test_14_assertion_ids_are_kept_until_the_assertion_expires_then_purged(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    async with gateway.store.transaction() as tx:
        assert await tx.claim_assertion_id("aler-keys", "old", now - timedelta(seconds=1), now - timedelta(hours=1))
        assert await tx.claim_assertion_id("aler-keys", "live", now + timedelta(seconds=60), now)
        assert await tx.assertion_ids_kept() == 1  # the expired id went
        assert not await tx.claim_assertion_id("aler-keys", "live", now + timedelta(seconds=60), now)
        assert await tx.claim_assertion_id("comune-keys", "live", now + timedelta(seconds=60), now)


async def test_14_refused_assertions_are_logged_at_warning_and_count_towards_the_lockout(
    gateway: Gateway, token_url: str, log_output: io.StringIO, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setattr(gateway, "settings", gateway.settings.model_copy(update={"rate_limits": RateLimitSettings(
        token_failures_before_lockout=3, token_lockout_seconds=120)}))
    app = create_app(gateway, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://gw") as client:
        wrong_key = form(assertion(OTHER_EC_KEY, "aler-keys", token_url))
        first = await client.post("/oauth/token", data=wrong_key)
        assert refused(first)
        lines = [json.loads(x) for x in log_output.getvalue().splitlines() if "token_request_rejected" in x]
        assert [(x["level"], x["host"], x["client_id"]) for x in lines] == [("warning", "198.51.100.9", "aler-keys")]
        assert lines[0]["reason"].startswith("assertion-signature")
        for _ in range(2):
            assert refused(await client.post("/oauth/token", data=form(assertion(OTHER_EC_KEY, "aler-keys",
                                                                                  token_url))))
        locked = await client.post("/oauth/token", data=form(assertion(EC_KEY, "aler-keys", token_url)))
        assert locked.status_code == 429, locked.text  # the address and the client id named by the assertion
    assert wrong_key["client_assertion"] not in log_output.getvalue()


async def test_14_gateway_clients_registers_public_keys_and_rotates_them_without_a_restart(
    gateway: Gateway, unlimited: httpx.AsyncClient, token_url: str, tmp_path: Path
) -> None:
    http = unlimited

    async def status(key: Key, client_id: str, alg: str) -> int:
        response = await http.post("/oauth/token", data=form(assertion(key, client_id, token_url, alg=alg)))
        return response.status_code

    pem = tmp_path / "newco.pub.pem"
    pem.write_bytes(OTHER_EC_KEY.as_pem(private=False))
    code, out = await command(gateway, "add", "newco-keys", "--organisation", "comune", "--role", "system",
                              "--scope", "status:read", "--public-key", str(pem))
    assert code == 0 and "authentication: private_key_jwt" in out and "client_secret" not in out, out
    await within(lambda: _is(status(OTHER_EC_KEY, "newco-keys", "ES256"), 200))
    assert (await command(gateway, "rotate-secret", "newco-keys"))[0] == 1  # a client with keys gets no secret

    jwks = tmp_path / "newco.jwks.json"
    jwks.write_text(public_jwks(ED_KEY), encoding="utf-8")
    code, out = await command(gateway, "rotate-key", "newco-keys", "--public-key", str(jwks))
    assert code == 0, out
    await within(lambda: _is(status(OTHER_EC_KEY, "newco-keys", "ES256"), 401))  # the old key is refused
    assert await status(ED_KEY, "newco-keys", "Ed25519") == 200

    # a client with a secret switches to keys: its secret stops working
    code, out = await command(gateway, "rotate-key", "aler-readonly", "--public-key", str(pem))
    assert code == 0, out
    await within(lambda: _is(status(OTHER_EC_KEY, "aler-readonly", "ES256"), 200))
    basic = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("aler-readonly", SECRET))
    assert refused(basic)
    code, out = await command(gateway, "list")
    assert "newco-keys\tcomune\tsystem\tstatus:read\tenabled\tprivate_key_jwt" in out
    assert "aler-test\taler\tsystem" in out and "enabled\tclient_secret" in out

    # only public keys that verify allowed algorithms are registered
    private = tmp_path / "private.pem"
    private.write_bytes(OTHER_EC_KEY.as_pem(private=True))
    short_rsa = tmp_path / "short.json"
    with pytest.warns(SecurityWarning):
        short_rsa.write_text(json.dumps(RSAKey.generate_key(1024, private=False).as_dict()), encoding="utf-8")
    for refused_file in (private, short_rsa):
        code, _ = await command(gateway, "add", "bad-keys", "--organisation", "comune", "--role", "system",
                                "--scope", "status:read", "--public-key", str(refused_file))
        assert code == 2, refused_file.name
