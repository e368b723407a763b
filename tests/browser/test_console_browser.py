"""The privacy officers' console in Debian's Chromium (issue 11): local sign-in with TOTP, every page with an
axe-core scan (no serious or critical violation) and a screenshot, an art. 15 search that finds the disclosure of
an F1 referral made in the same test with the identifier in no URL, no history entry and no log line, downloads,
closing a review item, the in-browser verification of a signed checkpoint and of an inclusion proof (and its
failure on a tampered checkpoint), cookie flags, CSRF refusal and sign-out."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, Route

from tests.browser.conftest import AXE, SCREENSHOTS, Console, first_disclosure
from tests.console_helpers import PASSWORD, f1_referral, officer_account, tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")
BOTH_ROLES = frozenset({"privacy-officer", "erasure-officer"})


async def _context(browser: Browser, console: Console) -> BrowserContext:
    context = await browser.new_context(base_url=console.base_url, accept_downloads=True, locale="it-IT")
    await context.add_init_script(path=str(AXE))
    return context


async def _signed_in(browser: Browser, console: Console, organisation: str = "gateway-privacy",
                     roles: frozenset[str] = BOTH_ROLES) -> tuple[BrowserContext, Page, str]:
    username = f"dpo-{uuid.uuid4().hex[:8]}"
    totp = await officer_account(console.gateway, username, organisation, roles)
    context = await _context(browser, console)
    page = await context.new_page()
    await _sign_in(page, username, totp)
    return context, page, username


async def _sign_in(page: Page, username: str, totp: pyotp.TOTP) -> None:
    await page.goto("/console/login")
    await page.get_by_label("Nome utente").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Codice di verifica (TOTP)").fill(totp.now())
    await page.get_by_role("button", name="Accedi").click()
    await page.wait_for_url("**/console/")


async def _checked(page: Page, name: str) -> None:
    """axe-core finds no serious or critical violation on the page; a screenshot of it is saved."""
    results: dict[str, Any] = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
               for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def _history(page: Page) -> list[str]:
    session = await page.context.new_cdp_session(page)
    history = await session.send("Page.getNavigationHistory")
    return [entry["url"] for entry in history["entries"]]


async def test_sign_in_with_totp_and_every_page_is_accessible(browser: Browser, console: Console) -> None:
    person, denied = tenant(11), tenant(12)
    await f1_referral(console.gateway, person, "b-pages-permit")
    await f1_referral(console.gateway, denied, "b-pages-deny", consent=False)
    await console.gateway.checkpointer.checkpoint_now()
    username = f"dpo-{uuid.uuid4().hex[:8]}"
    totp = await officer_account(console.gateway, username, "gateway-privacy", BOTH_ROLES)
    context = await _context(browser, console)
    page = await context.new_page()
    await page.goto("/console/")
    assert page.url.endswith("/console/login")
    await _checked(page, "01-login")
    await _sign_in(page, username, totp)
    assert await page.get_by_role("heading", name="Cruscotto").is_visible()
    assert await page.locator("svg.chart").count() >= 3
    await _checked(page, "02-home")

    await page.get_by_role("link", name="Persona (art. 15)").click()
    await _checked(page, "03-person-form")
    await page.get_by_label("Codice fiscale, STP o ENI").fill(person.cf)
    await page.get_by_role("button", name="Cerca").click()
    await page.get_by_role("heading", name="Risposta").wait_for()
    await _checked(page, "04-person-answer")
    await page.get_by_role("button", name="Apri la storia del consenso").first.click()
    await page.get_by_role("heading", name="Storia del consenso").first.wait_for()
    await _checked(page, "05-consent-timeline")

    await page.get_by_role("link", name="Coda di revisione").click()
    await _checked(page, "06-review-queue")
    await page.locator("#queue a").first.click()
    await _checked(page, "07-review-item")

    await page.get_by_role("link", name="Registro di audit").first.click()
    await _checked(page, "08-audit-log")
    await page.locator("table a").first.click()
    await page.get_by_role("heading", name="Come FHIR AuditEvent").wait_for()
    await _checked(page, "09-audit-record")
    await page.goto("/console/audit/checkpoints")
    await _checked(page, "10-checkpoints")

    await page.get_by_role("link", name="Registro dei trattamenti").click()
    assert await page.get_by_role("cell", name="F1").count() >= 1 or "F1" in await page.content()
    await _checked(page, "11-records-of-processing")
    await page.get_by_role("link", name="Cancellazione").click()
    await _checked(page, "12-erasure")
    await page.locator("#req-identifier").fill(denied.cf)
    await page.get_by_role("button", name="Continua").first.click()
    await page.get_by_role("heading", name="Conferma").wait_for()
    assert "chiave della persona" in await page.content()
    await _checked(page, "13-erasure-confirmation")

    await page.get_by_role("link", name="Cruscotto").click()
    await page.get_by_role("link", name="English").click()
    await page.get_by_role("heading", name="Home").wait_for()
    assert await page.locator("html").get_attribute("lang") == "en"
    await _checked(page, "14-home-english")
    await page.get_by_role("link", name="Italiano").click()
    await page.get_by_role("heading", name="Cruscotto").wait_for()
    await context.close()


async def test_art15_search_finds_the_referral_and_the_identifier_stays_out_of_urls_history_and_logs(
        browser: Browser, console: Console, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    person = tenant(13)
    await f1_referral(console.gateway, person, "b-art15")
    context, page, _ = await _signed_in(browser, console)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))

    row = await first_disclosure(page, person.cf)
    assert "F1" in row and console.gateway.registry.partners["fwa"].name in row and "microcredit-assessment" in row

    async with page.expect_download() as csv_download:
        await page.get_by_role("button", name="Scarica CSV").click()
    csv_text = (await (await csv_download.value).path()).read_text(encoding="utf-8")
    assert "disclosure" in csv_text and "F1" in csv_text
    async with page.expect_download() as json_download:
        await page.get_by_role("button", name="Scarica JSON").click()
    body = json.loads((await (await json_download.value).path()).read_text(encoding="utf-8"))
    assert [d["flow_id"] for d in body["disclosures"]] == ["F1"]
    async with context.expect_page() as opened:
        await page.get_by_role("button", name="Rapporto stampabile").click()
    report = await opened.value
    await report.get_by_role("heading", name="Comunicazioni dei suoi dati ad altri enti").wait_for()
    text = await report.content()
    assert console.gateway.settings.controller_name in text and console.gateway.settings.dpo_contact in text
    await _checked(report, "15-printable-report")
    await report.emulate_media(media="print")
    await report.screenshot(path=str(SCREENSHOTS / "16-printable-report-print.png"), full_page=True)

    urls = requested + await _history(page) + await _history(report) + [page.url, report.url]
    assert urls and all(person.cf not in url for url in urls)
    captured = caplog.text + "\n".join(str(r.msg) + str(r.args) for r in caplog.records)
    assert "POST /console/person" in captured  # the access log is captured: the check below means something
    assert "console" in console.logs.getvalue()  # and so are the gateway's own JSON lines
    assert person.cf not in captured and person.cf not in console.logs.getvalue()
    await context.close()


async def test_closing_a_review_item_from_the_filtered_queue(browser: Browser, console: Console) -> None:
    await f1_referral(console.gateway, tenant(14), "b-review-deny", consent=False)
    context, page, username = await _signed_in(browser, console)
    await page.get_by_role("link", name="Coda di revisione").click()
    await page.get_by_label("Flusso").select_option("F1")  # htmx swaps the table in
    await page.get_by_label("Tipo").select_option("denial")
    await page.wait_for_url("**kind=denial**")
    await page.locator("#queue a").first.click()
    await page.get_by_label("Da approfondire (escalation)").check()
    await page.get_by_label("Commento").fill("verificare con ALER")
    await page.get_by_role("button", name="Chiudi l'elemento").click()
    await page.get_by_role("status").filter(has_text="Elemento chiuso.").wait_for()
    assert "verificare con ALER" in await page.content()
    index = int(page.url.split("/console/review/")[1].split("?")[0])
    async with console.gateway.store.transaction() as tx:
        item = await tx.review_item(index)
    assert item is not None and item["resolution"] == "escalated" and item["reviewed_by"] == f"local:{username}"
    await context.close()


async def test_the_browser_verifies_checkpoints_and_proofs_and_catches_a_tampered_checkpoint(
        browser: Browser, console: Console) -> None:
    await f1_referral(console.gateway, tenant(15), "b-verify")
    signed = await console.gateway.checkpointer.checkpoint_now()
    context, page, _ = await _signed_in(browser, console)
    await page.goto("/console/audit/checkpoints")
    await page.get_by_role("button", name="Verifica nel browser").click()
    result = page.locator("#verify-result[data-outcome]")
    await result.wait_for()
    assert await result.get_attribute("data-outcome") == "verified", await result.inner_text()
    assert "Verificato nel tuo browser" in await result.inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "18-checkpoint-verified.png"), full_page=True)

    await page.goto(f"/console/audit/{signed.tree_size - 1}")
    await page.get_by_role("button", name="Verifica nel browser").click()
    await result.wait_for()
    assert await result.get_attribute("data-outcome") == "verified", await result.inner_text()

    async def tampered(route: Route, request: Request) -> None:
        """The checkpoint page as a compromised server or a meddler on the way would serve it: another root."""
        answer = await route.fetch()
        page_text = await answer.text()
        data = json.loads(page_text.split('id="verify-data">')[1].split("</script>")[0])
        origin, size, root, rest = data["note"].split("\n", 3)
        forged = dict(data, note="\n".join((origin, size, ("A" if root[0] != "A" else "B") + root[1:], rest)))
        await route.fulfill(response=answer, body=page_text.replace(json.dumps(data), json.dumps(forged)))

    await page.route("**/console/audit/checkpoints", tampered)
    await page.goto("/console/audit/checkpoints")
    await page.get_by_role("button", name="Verifica nel browser").click()
    await result.wait_for()
    assert await result.get_attribute("data-outcome") == "failed"
    assert "Verifica NON riuscita" in await result.inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "17-checkpoint-tampered.png"), full_page=True)
    await context.close()


async def test_cookie_flags_csrf_refusal_and_sign_out(browser: Browser, console: Console) -> None:
    context, page, username = await _signed_in(browser, console)
    [session] = [c for c in await context.cookies() if c["name"] == "console_session"]
    assert (session["httpOnly"], session["secure"], session["sameSite"], session["path"]) == (
        True, True, "Strict", "/console")

    forged = await page.request.post("/console/logout", form={"csrf_token": "forged"})
    assert forged.status == 403
    no_token = await page.request.post("/console/person", form={"identifier": tenant(16).cf})
    assert no_token.status == 403
    await page.goto("/console/")
    assert page.url.endswith("/console/")  # still signed in: the forged forms did nothing

    await page.get_by_role("button", name="Esci").click()
    await page.wait_for_url("**/console/login")
    await page.goto("/console/")
    assert page.url.endswith("/console/login")
    async with console.gateway.store.transaction() as tx:
        records = [json.loads(e["record"]) for e in await tx.audit_entries(0, 1_000_000)]
    mine = [(r["action"], r["outcome"]) for r in records
            if r["event_type"] == "console-session" and r.get("client_id") == f"local:{username}"]
    assert mine == [("sign-in-local", "success"), ("sign-out", "success")]
    await context.close()
