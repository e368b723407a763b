"""The officers' overview kept in the store (migration 0015), on both stores: the 30-day tally counts each
audit record once whoever counts it and however often, survives the process that counted it, and shows an
officer only their organisation's traffic; the integrity status a verification stores is what later answers
carry, without verifying again, until it is older than the configured age."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import orjson
from sqlalchemy import func, select

from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.privacy.activity import ActivityTally
from gateway.privacy.integrity import IntegrityCache, IntegrityStatus
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.officer import Officer
from gateway.privacy.overview import OverviewKeeper
from gateway.simulators import aler_arrears_message, fhir_consent
from gateway.store.tables import audit_integrity_checks
from tests.conftest import bearer

DPO = Officer("dpo-test", "gateway-privacy", sees_all=True)
ALER = Officer("aler-dpo", "aler")
ASST = Officer("asst-dpo", "asst")


async def referrals(gateway: Gateway, http: httpx.AsyncClient, tag: str, consenting: int, refused: int,
                    first: int = 0) -> None:
    """``consenting`` F1 referrals of people who consented (permitted) and ``refused`` of people who did not,
    taken from the ``first``-th tenant in arrears on."""
    people = [t for t in generate_tenants("S", seed=17, limit=60) if t.arrears_cents > 0][first:][:consenting + refused]
    aler = await bearer(http, "aler-test")
    for index, person in enumerate(people):
        if index < consenting:
            assert (await http.post("/v1/consents", json=fhir_consent(person.cf), headers=aler)).status_code == 201
        response = await http.post("/v1/partners/aler/messages", headers={**aler, "content-type": "application/json"},
                                   content=orjson.dumps(aler_arrears_message(person, f"ov-{tag}-{index}")))
        assert response.status_code == 202
    await gateway.relay.drain()


def decisions(view_counts: dict[tuple[str, str, str, str], int]) -> Counter[str]:
    """Decision counts per series (permit, deny-consent, ...), all flows and days together."""
    totals: Counter[str] = Counter()
    for (kind, _flow, series, _day), n in view_counts.items():
        if kind == "decision":
            totals[series] += n
    return totals


def keeper(gateway: Gateway, verify_every: float = 3600) -> OverviewKeeper:
    return OverviewKeeper(PrivacyOffice.for_gateway(gateway), ActivityTally(), 3600, verify_every)


async def test_the_tally_counts_each_record_once_and_keeps_counting_where_it_stopped(
        gateway: Gateway, http: httpx.AsyncClient) -> None:
    await referrals(gateway, http, "a", consenting=3, refused=2)
    office = PrivacyOffice.for_gateway(gateway)
    # two processes counting at once (the workers' background count and an officer's look) count each record once
    await asyncio.gather(keeper(gateway).count(), keeper(gateway).count())
    async with gateway.store.transaction() as tx:
        first = await ActivityTally().view(tx, DPO, office.clock())
    # F1 sends each permitted referral to FWA: one permit per consenting person, one denial per other
    assert decisions(first.counts)["permit"] == 3
    assert decisions(first.counts)["deny-consent"] == 2
    assert first.backlog == 0

    await referrals(gateway, http, "b", consenting=0, refused=1, first=5)
    read = await keeper(gateway).count()  # a new tally object, as after a restart: it goes on from the cursor
    assert 0 < read < 20
    assert await keeper(gateway).count() == 0
    async with gateway.store.transaction() as tx:
        again = await ActivityTally().view(tx, DPO, office.clock())
        seen_by_aler = await ActivityTally().view(tx, ALER, office.clock())
        seen_by_asst = await ActivityTally().view(tx, ASST, office.clock())
    assert decisions(again.counts) == decisions(first.counts) + Counter({"deny-consent": 1})
    assert decisions(seen_by_aler.counts) == decisions(again.counts)  # ALER sent every one of them
    assert decisions(seen_by_asst.counts) == Counter()  # the trust is party to none


async def test_an_officers_look_counts_what_the_workers_have_not_and_says_what_is_left(
        gateway: Gateway, http: httpx.AsyncClient) -> None:
    await referrals(gateway, http, "c", consenting=1, refused=1)
    office = PrivacyOffice.for_gateway(gateway)
    tally = ActivityTally()
    async with gateway.store.transaction() as tx:
        assert await tally.refresh(tx, office.clock(), limit=1) == 1
        partial = await tally.view(tx, DPO, office.clock())
    assert partial.backlog > 0
    view = await office.daily_activity(DPO, "req-overview", tally)
    assert (view.records_read, view.backlog) == (partial.backlog, 0)  # the look counted the rest itself
    assert decisions(view.counts) == Counter({"permit": 1, "deny-consent": 1})


async def test_answers_carry_the_stored_verification_until_it_is_too_old(gateway: Gateway) -> None:
    overview = keeper(gateway)
    await overview.verify_if_due()  # due at start: nothing young enough is stored (a worker may have stored one)
    assert not await overview.verify_if_due()  # just stored: not due again
    async with gateway.store.transaction() as tx:
        stored = (await tx.conn.execute(select(func.count()).select_from(audit_integrity_checks))).scalar_one()
    assert stored >= 1

    office = PrivacyOffice.for_gateway(gateway)
    office.integrity_cache = IntegrityCache(300)
    verifications: list[int] = []
    verify = office.verify_integrity

    async def counted() -> IntegrityStatus:
        verifications.append(1)
        return await verify()

    office.verify_integrity = counted  # type: ignore[method-assign]
    status = await office.integrity()
    assert status.verified and verifications == []  # the stored one, not a new verification

    office.integrity_cache = IntegrityCache(0.001)
    await asyncio.sleep(0.01)
    assert (await office.integrity()).verified  # too old: answered at once, and verified anew in the background
    for _ in range(200):
        if verifications:
            break
        await asyncio.sleep(0.05)
    assert verifications == [1]
