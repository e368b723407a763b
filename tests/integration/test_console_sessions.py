"""Console sign-in with a local officer account (issue 11): password and TOTP, a server-side session behind an
HttpOnly, Secure, SameSite=Strict cookie scoped to ``/console``, CSRF refusal, lockout after repeated failures,
and every sign-in, sign-out and failed sign-in in the audit log without anything the person typed."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest

from gateway.bootstrap import Gateway
from gateway.console.accounts import new_account
from gateway.console.sessions import ConsoleOfficer, as_privacy_officer

PASSWORD = "correct horse battery staple"


async def _records(gateway: Gateway) -> list[dict[str, object]]:
    async with gateway.store.transaction() as tx:
        return [json.loads(e["record"]) for e in await tx.audit_entries(0, 100_000)]


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def _account(gateway: Gateway, username: str = "dpo.aler", organisation: str = "aler") -> str:
    made = await new_account(gateway.store, username, "Ufficio DPO ALER", organisation,
                             frozenset({"privacy-officer"}), PASSWORD, datetime.now(UTC))
    assert made is not None and made.otpauth_uri.startswith("otpauth://totp/")
    return made.totp_secret


async def _sign_in(http: httpx.AsyncClient, username: str, password: str, code: str) -> httpx.Response:
    page = await http.get("/console/login")
    assert page.status_code == 200
    return await http.post("/console/login", data={"username": username, "password": password, "code": code,
                                                    "csrf_token": _csrf(page.text)})


async def test_local_sign_in_sets_a_strict_cookie_and_audits_sign_in_and_out(gateway: Gateway,
                                                                             http: httpx.AsyncClient) -> None:
    secret = await _account(gateway)
    assert (await http.get("/console/")).headers["location"] == "/console/login"

    answer = await _sign_in(http, "dpo.aler", PASSWORD, pyotp.TOTP(secret).now())

    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("console_session=")
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/console"):
        assert flag.lower() in cookie.lower(), cookie
    home = await http.get("/console/")
    assert home.status_code == 200 and "Cruscotto" in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]

    refused = await http.post("/console/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await http.get("/console/")).status_code == 200  # still signed in: nothing was done

    out = await http.post("/console/logout", data={"csrf_token": _csrf(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert (await http.get("/console/")).status_code == 303

    sessions = [r for r in await _records(gateway) if r["event_type"] == "console-session"]
    assert [(r["action"], r["outcome"]) for r in sessions] == [("sign-in-local", "success"), ("sign-out", "success")]
    assert {r["client_id"] for r in sessions} == {"local:dpo.aler"}
    assert sessions[0]["token_id"] == sessions[1]["token_id"]
    queries = [r for r in await _records(gateway) if r["event_type"] == "privacy-query"]
    assert queries and all(q["client_id"] == "local:dpo.aler" and q["requesting_org"] == "aler" for q in queries)


async def test_failed_sign_ins_are_audited_without_what_was_typed_and_lock_the_account(
        gateway: Gateway, http: httpx.AsyncClient) -> None:
    secret = await _account(gateway, "dpo.comune", "comune")
    bad = await _sign_in(http, "dpo.comune", "RSSMRA85T10A562S", pyotp.TOTP(secret).now())
    assert bad.status_code == 401 and "console_session" not in bad.headers.get("set-cookie", "")
    for _ in range(4):
        await _sign_in(http, "dpo.comune", "wrong", "000000")
    locked = await _sign_in(http, "dpo.comune", PASSWORD, pyotp.TOTP(secret).now())
    assert locked.status_code in (401, 429) and "console_session=" not in locked.headers.get("set-cookie", "")

    failures = [r for r in await _records(gateway) if r["event_type"] == "console-session"]
    assert failures and all(r["outcome"] == "failure" for r in failures)
    assert {r["reason"] for r in failures} >= {"bad-credentials", "locked-out"}
    text = json.dumps(failures)
    assert "dpo.comune" not in text and "RSSMRA85T10A562S" not in text and "wrong" not in text


async def test_a_login_form_without_its_token_is_refused(gateway: Gateway, http: httpx.AsyncClient) -> None:
    secret = await _account(gateway)
    answer = await http.post("/console/login", data={"username": "dpo.aler", "password": PASSWORD,
                                                     "code": pyotp.TOTP(secret).now(), "csrf_token": "x"})
    assert answer.status_code == 403


@pytest.mark.parametrize(("organisation", "sees_all"), [("gateway-privacy", True), ("asst", False)])
def test_console_officers_map_to_the_privacy_office_scoping(gateway: Gateway, organisation: str,
                                                            sees_all: bool) -> None:
    officer = ConsoleOfficer("oidc:" + "x" * 80, "Name", organisation, frozenset({"privacy-officer"}), "oidc")
    mapped = as_privacy_officer(officer, gateway.settings, "ref")
    assert mapped.sees_all is sees_all and mapped.organisation == organisation and len(mapped.client_id) <= 64


@pytest.mark.parametrize("kind", ["idle", "absolute"])
async def test_a_session_ends_when_idle_or_too_old(gateway: Gateway, http: httpx.AsyncClient, kind: str) -> None:
    secret = await _account(gateway)
    assert (await _sign_in(http, "dpo.aler", PASSWORD, pyotp.TOTP(secret).now())).status_code == 303
    app = http._transport.app  # type: ignore[attr-defined]
    settings = gateway.settings
    start = datetime.now(UTC)
    step = timedelta(seconds=settings.console_session_idle_seconds - 30)
    if kind == "idle":
        app.state.console_clock = lambda: start + step  # used within the idle time: still signed in
        assert (await http.get("/console/records")).status_code == 200
        app.state.console_clock = lambda: start + 2 * step + timedelta(seconds=90)
    else:  # kept busy, but past the absolute limit
        at = start
        while at + step - start < timedelta(seconds=settings.console_session_absolute_seconds - 60):
            at += step
            app.state.console_clock = lambda at=at: at
            assert (await http.get("/console/records")).status_code == 200
        app.state.console_clock = lambda: start + timedelta(seconds=settings.console_session_absolute_seconds + 1)
    ended = await http.get("/console/records")
    assert ended.status_code == 303 and ended.headers["location"] == "/console/login"
    app.state.console_clock = None
    assert (await http.get("/console/records")).status_code == 303  # deleted, not merely refused
