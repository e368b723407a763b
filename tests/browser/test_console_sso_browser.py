"""Single sign-on in Debian's Chromium (issue 11): an officer presses the console's SPID/CIE button, signs in on
Keycloak's real login page, lands on the console's home for their organisation, and signs out, which ends
Keycloak's session too (the next sign-on asks for the password again); and the gateway's DPO, signed in the same
way, answers an art. 15 request about a person whose F1 referral crossed in the same test and closes a review item.

Keycloak answers at ``localhost`` and the console at ``127.0.0.1``: two different sites, as a provider and a
console are in production, so the console's ``SameSite=Strict`` session cookie has to survive the cross-site
return from the provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser

from gateway.api import create_app
from gateway.bootstrap import Gateway, build
from gateway.settings import ConsoleOidcSettings, GatewaySettings, OidcGroupMapping
from tests.browser.conftest import AXE, SCREENSHOTS, first_disclosure
from tests.console_helpers import f1_referral, tenant
from tests.oidc_provider import Provider, password_of, provider

pytestmark = pytest.mark.asyncio(loop_scope="session")
MAPPINGS = (OidcGroupMapping(group="/comune/privacy-officers", organisation="comune", roles=("privacy-officer",)),
            OidcGroupMapping(group="/gateway/data-protection-office", organisation="gateway-privacy",
                             roles=("privacy-officer", "erasure-officer")))


@dataclass
class SsoConsole:
    gateway: Gateway
    base_url: str
    keycloak: Provider


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sso_console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SsoConsole]:
    """A gateway (embedded store and bus) whose console signs in through the test Keycloak, served by uvicorn."""
    keycloak = provider()
    data = tmp_path_factory.mktemp("sso-console")
    secret = data / "console-client-secret"
    secret.write_text(keycloak.client_secret)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    oidc = ConsoleOidcSettings(issuer=keycloak.issuer, client_id=keycloak.client_id, client_secret_file=secret,
                               mappings=MAPPINGS, redirect_uri=f"{base_url}/console/sso/callback",
                               post_logout_redirect_uri=f"{base_url}/console/login")
    gateway = build(GatewaySettings(data_dir=Path(data) / "var", console_oidc=oidc))
    await gateway.start()
    server = uvicorn.Server(uvicorn.Config(create_app(gateway, manage_lifecycle=False), host="127.0.0.1", port=port,
                                           log_config=None, lifespan="off", access_log=False))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield SsoConsole(gateway, base_url, keycloak)
    finally:
        server.should_exit = True
        await serving
        await gateway.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_officer_signs_in_through_keycloak_and_out_of_both(browser: Browser,
                                                                    sso_console: SsoConsole) -> None:
    context = await browser.new_context(base_url=sso_console.base_url, locale="it-IT")
    await context.add_init_script(path=str(AXE))
    page = await context.new_page()
    await page.goto("/console/login")
    results: dict[str, Any] = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    assert [v["id"] for v in results["violations"] if v["impact"] in ("serious", "critical")] == []
    await page.screenshot(path=str(SCREENSHOTS / "sso-00-console-login.png"), full_page=True)
    await page.get_by_role("link", name="Accedi con SPID/CIE (Keycloak)").click()

    await page.wait_for_url(f"{sso_console.keycloak.issuer}/protocol/openid-connect/auth?**")
    await page.screenshot(path=str(SCREENSHOTS / "sso-01-keycloak-login.png"), full_page=True)
    await page.locator("#username").fill("marco.comune")
    await page.locator("#password").fill(password_of("marco.comune"))
    await page.locator("#kc-login").click()

    await page.wait_for_url(f"{sso_console.base_url}/console/")
    assert await page.get_by_role("heading", name="Cruscotto").is_visible()
    assert await page.get_by_text("Marco Prova").first.is_visible()  # the name the provider's userinfo gave
    await page.screenshot(path=str(SCREENSHOTS / "sso-02-home.png"), full_page=True)
    cookies = {c["name"]: c for c in await context.cookies(f"{sso_console.base_url}/console/sso/callback")}
    assert cookies["console_session"]["sameSite"] == "Strict" and cookies["console_session"]["httpOnly"]
    assert "console_sso_pending" not in cookies  # the sign-in in progress is forgotten once done

    await page.get_by_role("button", name="Esci").click()
    await page.wait_for_url(f"{sso_console.base_url}/console/login**")
    assert "console_session" not in {c["name"] for c in await context.cookies(f"{sso_console.base_url}/console/")}

    await page.goto("/console/sso/start")  # the provider's session is over: it asks for the password again
    await page.wait_for_url(f"{sso_console.keycloak.issuer}/protocol/openid-connect/auth?**")
    assert await page.locator("#kc-form-login").is_visible()
    await page.goto("/console/")
    assert page.url.endswith("/console/login")
    await context.close()


async def _keycloak_sign_in(browser: Browser, sso_console: SsoConsole, username: str) -> tuple[Any, Any]:
    context = await browser.new_context(base_url=sso_console.base_url, locale="it-IT")
    page = await context.new_page()
    await page.goto("/console/login")
    await page.get_by_role("link", name="Accedi con SPID/CIE (Keycloak)").click()
    await page.wait_for_url(f"{sso_console.keycloak.issuer}/protocol/openid-connect/auth?**")
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(password_of(username))
    await page.locator("#kc-login").click()
    await page.wait_for_url(f"{sso_console.base_url}/console/")
    return context, page


async def test_the_dpo_signed_in_through_keycloak_answers_art15_and_closes_a_review_item(
        browser: Browser, sso_console: SsoConsole) -> None:
    gateway = sso_console.gateway
    person = tenant(21)
    await f1_referral(gateway, person, "sso-art15")  # crosses to FWA in this test
    await f1_referral(gateway, tenant(22), "sso-deny", consent=False)  # denied: an item of the review queue
    context, page = await _keycloak_sign_in(browser, sso_console, "sara.dpo")
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))

    row = await first_disclosure(page, person.cf)
    assert "F1" in row and gateway.registry.partners["fwa"].name in row and "microcredit-assessment" in row
    assert all(person.cf not in url for url in [*requested, page.url])

    await page.get_by_role("link", name="Coda di revisione").click()
    await page.get_by_label("Tipo").select_option("denial")
    await page.wait_for_url("**kind=denial**")
    await page.locator("#queue a").first.click()
    await page.get_by_label("Confermato", exact=True).check()
    await page.get_by_label("Commento").fill("diniego corretto: nessun consenso")
    await page.get_by_role("button", name="Chiudi l'elemento").click()
    await page.get_by_role("status").filter(has_text="Elemento chiuso.").wait_for()
    index = int(page.url.split("/console/review/")[1].split("?")[0])
    async with gateway.store.transaction() as tx:
        item = await tx.review_item(index)
    assert item is not None and item["resolution"] == "confirmed"
    assert str(item["reviewed_by"]).startswith("oidc:")  # the provider's person, not a local account
    await context.close()
