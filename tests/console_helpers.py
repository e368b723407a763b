"""Shared by the console's HTTP and browser tests: local officer accounts, signing in over HTTP, and a real F1
referral (and a denial) through the running gateway's bus."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime

import httpx
import orjson
import pyotp

from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.console.accounts import new_account
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.simulators import aler_arrears_message, fhir_consent

PASSWORD = "correct horse battery staple"


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:2000]
    return match.group(1)


async def officer_account(gateway: Gateway, username: str, organisation: str,
                          roles: frozenset[str] = frozenset({"privacy-officer"})) -> pyotp.TOTP:
    made = await new_account(gateway.store, username, f"Officer {username}", organisation, roles, PASSWORD,
                             datetime.now(UTC))
    assert made is not None
    return pyotp.TOTP(made.totp_secret)


async def sign_in(http: httpx.AsyncClient, username: str, totp: pyotp.TOTP) -> str:
    """Sign in over HTTP; the CSRF token of the signed-in session."""
    page = await http.get("/console/login")
    answer = await http.post("/console/login", data={"username": username, "password": PASSWORD,
                                                      "code": totp.now(), "csrf_token": csrf(page.text)})
    assert answer.status_code == 303, answer.text[:2000]
    return csrf((await http.get("/console/")).text)


def tenant(seed: int) -> SyntheticTenant:
    return next(t for t in generate_tenants("S", seed=seed, limit=50) if t.arrears_cents > 0)


async def f1_referral(gateway: Gateway, person: SyntheticTenant, message_id: str, *, consent: bool = True) -> None:
    """ALER's arrears record for ``person`` through ``in.aler`` (with a consent recorded first, or without one,
    so that it is denied), waiting until its decision is in the audit log."""
    if consent:
        await gateway.consents.record(fhir_consent(person.cf), "aler", "aler-test", f"req-{message_id}")
    async with gateway.store.transaction() as tx:
        before = (await tx.audit_head()).size
    topic = gateway.settings.topics.name("in", "aler")
    await gateway.bus.publish([OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(person, message_id)),
                                              headers=(("request-id", b"req-console"),))])
    deadline = time.monotonic() + 60
    while True:
        async with gateway.store.transaction() as tx:
            entries = await tx.audit_entries(before, 1000)
        if any(b'"flow_id":"F1"' in e["record"].encode() for e in entries):
            return
        assert time.monotonic() < deadline, "the referral was never decided"
        await asyncio.sleep(0.2)
