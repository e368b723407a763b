"""Console single sign-on against the real Keycloak of the test run (issue 11): a person types their password on
Keycloak's own login form (over HTTP, no browser), and the console signs them in for the organisation and roles
their groups map to, or refuses and audits why: wrong password (the provider refuses), no mapped group, a
callback whose state is not this browser's, a code used twice, an ID token whose nonce is not the request's.
Signing out ends the provider's session too (RP-initiated logout with the ID token as ``id_token_hint``).

The browser test (``tests/browser/test_console_sso_browser.py``) does the same through Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.api import create_app
from gateway.bootstrap import Gateway, build
from gateway.console import store as console_store
from gateway.console.oidc import PENDING_COOKIE, PendingSignIns
from gateway.settings import ConsoleOidcSettings, OidcGroupMapping
from tests.conftest import EMBEDDED, Backends
from tests.oidc_provider import Provider, browser_towards_provider, password_of, provider, sign_in_at_provider

REDIRECT_URI = "http://127.0.0.1/console/sso/callback"
"""Registered in the realm (any port on loopback); the test hands the provider's answer to the app itself."""
POST_LOGOUT_URI = "http://127.0.0.1/console/login"
MAPPINGS = (
    OidcGroupMapping(group="/aler/privacy-officers", organisation="aler", roles=("privacy-officer",)),
    OidcGroupMapping(group="/comune/privacy-officers", organisation="comune", roles=("privacy-officer",)),
    OidcGroupMapping(group="/gateway/data-protection-office", organisation="gateway-privacy",
                     roles=("privacy-officer", "erasure-officer")),
)


@pytest.fixture
def keycloak() -> Provider:
    return provider()


def sso_settings(keycloak: Provider, tmp_path: Path) -> ConsoleOidcSettings:
    secret = tmp_path / "console-client-secret"
    secret.write_text(keycloak.client_secret + "\n")
    return ConsoleOidcSettings(issuer=keycloak.issuer, client_id=keycloak.client_id, client_secret_file=secret,
                               mappings=MAPPINGS, redirect_uri=REDIRECT_URI,
                               post_logout_redirect_uri=POST_LOGOUT_URI)


@pytest.fixture
async def sso_gateway(keycloak: Provider, settings_for: Callable[[Backends], object],
                      tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = await settings_for(EMBEDDED)  # type: ignore[misc]
    settings = settings.model_copy(update={"console_oidc": sso_settings(keycloak, tmp_path)})
    gw = build(settings)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def console(sso_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """The officer's browser towards the console."""
    app = create_app(sso_gateway, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        yield client


@pytest.fixture
async def at_provider() -> AsyncIterator[httpx.AsyncClient]:
    """The same browser towards Keycloak (its own cookies: Keycloak's session)."""
    async with browser_towards_provider() as client:
        yield client


async def start(console: httpx.AsyncClient) -> str:
    """Press the console's sign-on button; the authorization URL the console sends the browser to."""
    answer = await console.get("/console/sso/start")
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


async def callback(console: httpx.AsyncClient, provider_answer: httpx.Response,
                   pending: str | None = None) -> httpx.Response:
    """Follow the provider's redirect back to the console's callback (with ``pending`` as the only cookie,
    when given: a browser whose cookie jar was tampered with)."""
    assert provider_answer.status_code == 302, provider_answer.text[:1000]
    location = provider_answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    headers = {}
    if pending is not None:
        console.cookies.clear()
        headers["cookie"] = f"{PENDING_COOKIE}={pending}"
    return await console.get("/console/sso/callback?" + urlsplit(location).query, headers=headers)


async def sign_in(console: httpx.AsyncClient, at_provider: httpx.AsyncClient, username: str) -> httpx.Response:
    url = await start(console)
    return await callback(console, await sign_in_at_provider(at_provider, url, username, password_of(username)))


async def audit(gateway: Gateway) -> list[dict[str, object]]:
    async with gateway.store.transaction() as tx:
        return [json.loads(e["record"]) for e in await tx.audit_entries(0, 100_000)]


async def failures(gateway: Gateway) -> list[str]:
    return [str(r["reason"]) for r in await audit(gateway)
            if r["event_type"] == "console-session" and r["outcome"] == "failure"]


def jwt_claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


async def test_the_sign_in_page_offers_the_provider(console: httpx.AsyncClient, keycloak: Provider) -> None:
    page = await console.get("/console/login")
    assert page.status_code == 200
    assert "Accedi con SPID/CIE (Keycloak)" in page.text and 'href="/console/sso/start"' in page.text
    provider_origin = "/".join(keycloak.issuer.split("/")[:3])
    # the sign-out form's answer redirects to the provider: the console's pages allow that one form target
    assert f"form-action 'self' {provider_origin};" in page.headers["content-security-policy"]


async def test_the_authorization_request_uses_pkce_s256_state_and_nonce(console: httpx.AsyncClient,
                                                                       keycloak: Provider) -> None:
    answer = await console.get("/console/sso/start")
    assert answer.status_code == 303
    url = urlsplit(answer.headers["location"])
    assert f"{url.scheme}://{url.netloc}{url.path}".startswith(keycloak.issuer + "/protocol/openid-connect/auth")
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == keycloak.client_id
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
    assert query["scope"] == "openid" and query["redirect_uri"] == REDIRECT_URI
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{PENDING_COOKIE}=")
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/console/sso"):
        assert flag.lower() in cookie.lower(), cookie
    for secret_part in (query["state"], query["nonce"]):
        assert secret_part not in cookie  # sealed, not merely encoded


@pytest.mark.parametrize(("username", "organisation", "roles"), [
    ("giulia.aler", "aler", {"privacy-officer"}),
    ("marco.comune", "comune", {"privacy-officer"}),
    ("sara.dpo", "gateway-privacy", {"privacy-officer", "erasure-officer"}),
])
async def test_an_officer_signs_in_for_the_organisation_and_roles_their_groups_map_to(
        console: httpx.AsyncClient, at_provider: httpx.AsyncClient, sso_gateway: Gateway,
        username: str, organisation: str, roles: set[str]) -> None:
    answer = await sign_in(console, at_provider, username)

    assert answer.status_code == 200, answer.text
    assert '<meta http-equiv="refresh" content="0;url=/console/">' in answer.text
    session_cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("console_session="))
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/console"):
        assert flag.lower() in session_cookie.lower(), session_cookie
    home = await console.get("/console/")
    assert home.status_code == 200 and "Cruscotto" in home.text

    cookie_value = session_cookie.split(";")[0].split("=", 1)[1]
    async with sso_gateway.store.transaction() as tx:
        stored = await console_store.session(tx, hashlib.sha256(cookie_value.encode()).hexdigest())
    assert stored is not None
    officer = stored.officer
    assert officer["organisation"] == organisation and set(officer["roles"]) == roles  # type: ignore[arg-type]
    assert officer["sign_in_method"] == "oidc" and str(officer["subject"]).startswith("oidc:")
    assert officer["display_name"] != "—"  # the name came from the userinfo endpoint

    records = [r for r in await audit(sso_gateway) if r["event_type"] == "console-session"]
    assert [(r["action"], r["outcome"], r["requesting_org"]) for r in records] == [
        ("sign-in-oidc", "success", organisation)]
    assert records[0]["client_id"] == officer["subject"]
    assert username.split(".")[0] not in json.dumps(records).lower()


async def test_a_wrong_password_is_refused_by_the_provider_and_nobody_is_signed_in(
        console: httpx.AsyncClient, at_provider: httpx.AsyncClient, sso_gateway: Gateway) -> None:
    url = await start(console)
    answer = await sign_in_at_provider(at_provider, url, "giulia.aler", "not-her-password")

    assert answer.status_code == 200 and "location" not in answer.headers
    assert 'id="kc-form-login"' in answer.text  # the form again, with Keycloak's error
    assert (await console.get("/console/")).status_code == 303
    assert not [r for r in await audit(sso_gateway) if r["event_type"] == "console-session"]


async def test_a_person_whose_groups_are_not_mapped_is_refused_and_the_refusal_audited(
        console: httpx.AsyncClient, at_provider: httpx.AsyncClient, sso_gateway: Gateway) -> None:
    answer = await sign_in(console, at_provider, "paolo.sportello")

    assert answer.status_code == 403
    assert not any(c.startswith("console_session=") for c in answer.headers.get_list("set-cookie"))
    assert (await console.get("/console/")).status_code == 303
    records = [r for r in await audit(sso_gateway) if r["event_type"] == "console-session"]
    assert [(r["action"], r["outcome"], r["reason"]) for r in records] == [
        ("sign-in-oidc", "failure", "no-mapped-group")]
    assert records[0].get("client_id") is None and records[0].get("requesting_org") is None
    assert "paolo" not in json.dumps(records).lower() and "sportello" not in json.dumps(records).lower()


async def test_a_callback_whose_state_is_not_this_browsers_is_refused(
        console: httpx.AsyncClient, at_provider: httpx.AsyncClient, sso_gateway: Gateway) -> None:
    first = await start(console)
    await start(console)  # a second sign-in started in this browser replaces the first
    answer = await callback(console, await sign_in_at_provider(at_provider, first, "giulia.aler",
                                                                  password_of("giulia.aler")))
    assert answer.status_code == 401
    assert (await console.get("/console/")).status_code == 303

    console.cookies.clear()  # another browser, which started nothing, handed a valid answer
    stranger = await console.get("/console/sso/callback?code=abc&state=def")
    assert stranger.status_code == 401
    assert await failures(sso_gateway) == ["state-mismatch", "no-sign-in-started"]


async def test_a_code_used_twice_is_refused(console: httpx.AsyncClient, at_provider: httpx.AsyncClient,
                                            sso_gateway: Gateway) -> None:
    started = await console.get("/console/sso/start")
    pending = started.cookies[PENDING_COOKIE]
    provider_answer = await sign_in_at_provider(at_provider, started.headers["location"], "marco.comune",
                                                password_of("marco.comune"))
    assert (await callback(console, provider_answer)).status_code == 200

    replayed = await callback(console, provider_answer, pending=pending)

    assert replayed.status_code == 401
    assert await failures(sso_gateway) == ["code-refused"]
    assert (await console.get("/console/")).status_code == 303


async def test_an_id_token_whose_nonce_is_not_the_requests_is_refused(
        console: httpx.AsyncClient, at_provider: httpx.AsyncClient, sso_gateway: Gateway,
        keycloak: Provider) -> None:
    started = await console.get("/console/sso/start")
    sealer = PendingSignIns(keycloak.client_secret)
    pending = sealer.open(started.cookies[PENDING_COOKIE])
    assert pending is not None
    (state_key,) = pending
    assert pending[state_key]["data"]["nonce"]
    pending[state_key]["data"]["nonce"] = "a-nonce-this-request-never-sent"
    answer = await callback(console, await sign_in_at_provider(at_provider, started.headers["location"],
                                                               "giulia.aler", password_of("giulia.aler")),
                            pending=sealer.seal(pending))

    assert answer.status_code == 401
    assert await failures(sso_gateway) == ["id-token-invalid"]
    assert (await console.get("/console/")).status_code == 303


async def test_signing_out_ends_the_providers_session_with_the_id_token_as_hint(
        console: httpx.AsyncClient, at_provider: httpx.AsyncClient, sso_gateway: Gateway,
        keycloak: Provider) -> None:
    assert (await sign_in(console, at_provider, "sara.dpo")).status_code == 200
    home = await console.get("/console/")
    csrf = home.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    still_signed_in_at_provider = await at_provider.get(await start(console))
    assert still_signed_in_at_provider.status_code == 302  # Keycloak's session answers without a form

    out = await console.post("/console/logout", data={"csrf_token": csrf})

    assert out.status_code == 303
    logout = urlsplit(out.headers["location"])
    assert f"{logout.scheme}://{logout.netloc}{logout.path}" == keycloak.issuer + "/protocol/openid-connect/logout"
    query = {k: v[0] for k, v in parse_qs(logout.query).items()}
    assert query["post_logout_redirect_uri"] == POST_LOGOUT_URI and query["client_id"] == keycloak.client_id
    hint = jwt_claims(query["id_token_hint"])
    assert hint["iss"] == keycloak.issuer and hint["aud"] == keycloak.client_id
    assert hint["groups"] == ["/gateway/data-protection-office"]
    assert not {"name", "given_name", "family_name", "email", "preferred_username"} & set(hint)
    assert (await console.get("/console/")).status_code == 303

    ended = await at_provider.get(out.headers["location"])
    assert ended.status_code == 302 and ended.headers["location"].startswith(POST_LOGOUT_URI)
    again = await at_provider.get(await start(console))
    assert again.status_code == 200 and 'id="kc-form-login"' in again.text  # the provider asks again
    actions = [r["action"] for r in await audit(sso_gateway) if r["event_type"] == "console-session"]
    assert actions == ["sign-in-oidc", "sign-out"]
