"""The officers' overview kept in the store (migration 0015), on both stores: the 30-day tally counts each
audit record once whoever counts it and however often, survives the process that counted it, and shows an
officer only their organisation's traffic; the integrity status a verification stores is what later answers
carry, without verifying again, until it is older than the configured age."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import get_args

import httpx
import orjson
import pytest
from sqlalchemy import delete, func, select

from gateway.audit import overview
from gateway.audit.record import AuditRecord
from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.policy import DenialReason
from gateway.privacy import activity
from gateway.privacy.activity import ActivityTally
from gateway.privacy.integrity import IntegrityCache, IntegrityStatus
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.officer import Officer
from gateway.privacy.overview import OverviewKeeper
from gateway.simulators import aler_arrears_message, fhir_consent
from gateway.store import Store
from gateway.store.tables import audit_activity_counts, audit_activity_cursor, audit_integrity_checks
from tests.conftest import Backends, bearer
from tests.contract.conftest import sql_store

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


async def test_the_tally_counts_each_record_once_and_the_appends_keep_it_current(
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
    # caught up with the log, the tally is kept current by each append, which counts its own records: a new tally
    # object (as after a restart) goes on from the cursor and finds nothing left to read
    assert await keeper(gateway).count() == 0
    async with gateway.store.transaction() as tx:
        again = await ActivityTally().view(tx, DPO, office.clock())
        seen_by_aler = await ActivityTally().view(tx, ALER, office.clock())
        seen_by_asst = await ActivityTally().view(tx, ASST, office.clock())
    assert decisions(again.counts) == decisions(first.counts) + Counter({"deny-consent": 1})
    assert decisions(seen_by_aler.counts) == decisions(again.counts)  # ALER sent every one of them
    assert decisions(seen_by_asst.counts) == Counter()  # the trust is party to none


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, settings_for: Callable[[Backends], object]) -> AsyncIterator[Store]:
    """A migrated store with nothing running on it: no worker counts behind the test's back."""
    async with sql_store(request.param, settings_for) as made:
        yield made


def mix() -> list[AuditRecord]:
    """One audit record of each shape the tally tells apart, and some it must leave out."""
    def record(event: str, action: str, outcome: str, **fields: str | None) -> AuditRecord:
        return AuditRecord(event_type=event, action=action, outcome=outcome,
                           occurred_at=datetime(2026, 3, 1, tzinfo=UTC), instance="test", **fields)

    orgs = {"source_org": "aler", "recipient_org": "fwa"}
    records = [record("decision", "forward", "permit", flow_id="F1", **orgs),
               record("decision", "forward", "permit", flow_id="F2", reason="consent-expired", source_org="asst",
                      recipient_org="comune", requesting_org="comune"),
               record("decision", "deny", "deny", flow_id=None, reason=None, **orgs),
               record("decision", "deny", "deny", flow_id="F1", reason="not-a-known-reason", source_org=""),
               record("delivery-dropped", "drop-at-delivery", "deny", flow_id="F1", reason="consent-withdrawn", **orgs),
               record("consent-change", "record-consent", "success", source_org="aler"),
               record("consent-change", "withdraw-consent", "success", requesting_org="aler"),
               record("consent-change", "erase-subject", "success", source_org="aler"),
               record("disclosure", "forward", "permit", flow_id="F1", **orgs),
               record("privacy-query", "read", "success", requesting_org="gateway-privacy"),
               record("token-issued", "issue", "success", requesting_org="aler")]
    records += [record("decision", "deny", "deny", flow_id="F1", reason=reason, **orgs)
                for reason in get_args(DenialReason)]
    return records


@pytest.mark.parametrize("counted_by", ["refresh", "append"])
async def test_the_stored_counts_are_the_python_definition_over_the_records_whoever_counts_them(
        store: Store, monkeypatch: pytest.MonkeyPatch, counted_by: str) -> None:
    """The grouping statement (on each backend), the appends' own counting and :func:`overview.counted` must never
    drift apart: the stored counts are those ``counted`` gives over the same records, read back one by one.
    ``refresh``: the tally's first count stops one record short of the log's end, so no append counts and the
    refresh counts them all from the stored records; ``append``: it reaches the end, and each append counts its
    own records as it writes them."""
    day_a = datetime(2026, 3, 1, tzinfo=UTC)
    at = [day_a + timedelta(hours=10)]
    store.clock = lambda: at[0]
    tally = ActivityTally(days=2)

    async def append(when: datetime, records: list[AuditRecord]) -> None:
        at[0] = when
        async with store.transaction() as tx:
            await tx.append_audit(records)

    await append(day_a + timedelta(hours=10), mix())
    first = len(mix()) - 1 if counted_by == "refresh" else len(mix())
    async with store.transaction() as tx:  # window of 1 and 2 March: the first count of the log
        assert await tally.refresh(tx, day_a + timedelta(hours=12), limit=first) == first
    # after it: more on 1 March (to be read but not counted on 3 March), also at 00:30 of 2 March in Rome (1 March
    # in UTC), then on 2 March and 3 March at both ends of the UTC day
    await append(day_a + timedelta(hours=23), mix())
    await append(datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=1))), mix()[:4])
    await append(day_a + timedelta(days=1), mix())
    await append(day_a + timedelta(days=2) - timedelta(microseconds=1), mix())
    await append(day_a + timedelta(days=2), mix())
    await append(day_a + timedelta(days=2, hours=23, minutes=59), mix())
    appended = 5 * len(mix()) + 4
    left = appended + len(mix()) - first if counted_by == "refresh" else 0  # what no append counted

    now = day_a + timedelta(days=2, hours=23, minutes=59, seconds=30)  # window of 2 and 3 March
    async with store.transaction() as tx:  # an officer's look, a few records at a time
        assert await tally.refresh(tx, now, limit=5) == min(5, left)
        assert await tally.refresh(tx, now, limit=7) == min(7, left - min(5, left))
    monkeypatch.setattr(activity, "BATCH", 6)  # the rest in statements of 6 records
    async with store.transaction() as tx:
        assert await tally.refresh(tx, now) == max(left - 12, 0)
        assert await tally.refresh(tx, now) == 0
        stored = await tally.counts(tx, now)
        days = {day for (day,) in await tx.conn.execute(select(audit_activity_counts.c.day).distinct())}
        entries = await tx.audit_entries(len(mix()), 10_000)

    expected: Counter[tuple[str, str, str, str, str | None, str | None, str | None]] = Counter()
    for entry in entries:  # what the tally counted in Python before the database did it
        day = entry["recorded_at"].date().isoformat()
        key = overview.counted(orjson.loads(entry["record"]), day) if day >= "2026-03-02" else None
        if key is not None:
            expected[key] += 1
    assert len(entries) == appended
    assert stored == expected
    assert days == {"2026-03-02", "2026-03-03"}  # 1 March, counted first, has left the window
    per_day: Counter[tuple[str, str]] = Counter()
    for (day, _kind, _flow, series, *_orgs), n in stored.items():
        per_day[(day, series)] += n
    assert per_day[("2026-03-03", "permit")] == 2 * 2  # two permits in each mix, two mixes on 3 March
    assert per_day[("2026-03-03", "deny-consent")] == 2 * 4
    assert per_day[("2026-03-03", "deny-policy")] == 2 * 4
    assert per_day[("2026-03-03", "deny-sensitive")] == 2 * 2
    assert per_day[("2026-03-03", "deny-other")] == 2 * 2
    assert per_day[("2026-03-03", "drop")] == 2
    assert (per_day[("2026-03-03", "given")], per_day[("2026-03-03", "withdrawn")]) == (2, 2)
    assert stored[("2026-03-03", "decision", "-", "deny-other", "aler", "fwa", None)] == 2  # no flow, no reason
    assert stored[("2026-03-03", "decision", "F1", "deny-other", None, None, None)] == 2  # an empty organisation
    assert stored[("2026-03-03", "decision", "F2", "permit", "asst", "comune", "comune")] == 2


async def test_an_append_never_waits_for_a_refresh_and_leaves_it_the_records_it_could_not_count(
        settings_for: Callable[[Backends], object]) -> None:
    """PostgreSQL, where two processes write at once: a refresh of a caught-up tally locks nothing, so an append
    beside it counts its own records; while a refresh holds the overview's cursor, another process's append goes
    through without waiting for it and counts nothing; the next refresh counts those records, once, and from then
    on the appends count their own again."""
    async with sql_store("postgres", settings_for) as store:
        tally = ActivityTally()
        one_mix = overview.tally(mix(), store.clock().astimezone(UTC).date().isoformat())

        async def append() -> None:
            async with store.transaction() as tx:
                await tx.append_audit(mix())

        async def counts() -> Counter[tuple[str, str, str, str, str | None, str | None, str | None]]:
            async with store.transaction() as tx:
                return await tally.counts(tx, store.clock())

        await append()
        async with store.transaction() as tx:
            assert await tally.refresh(tx, store.clock()) == len(mix())  # the first count: caught up
        async with store.transaction() as holding:
            assert await tally.refresh(holding, store.clock()) == 0  # caught up: it locks nothing
            await asyncio.wait_for(append(), timeout=60)
        async with store.transaction() as tx:
            assert await tally.refresh(tx, store.clock()) == 0  # the append counted its own
        async with store.transaction() as holding:
            # the cursor locked until this commits, as a refresh counting a backlog holds it
            await holding.conn.execute(select(audit_activity_cursor).with_for_update())
            await asyncio.wait_for(append(), timeout=60)  # would wait forever for the cursor without SKIP LOCKED
        assert await counts() == Counter({key: 2 * n for key, n in one_mix.items()})  # the second one left its own
        async with store.transaction() as tx:
            assert await tally.refresh(tx, store.clock()) == len(mix())
            assert await tally.refresh(tx, store.clock()) == 0
        await append()  # the cursor at the log's end again: the append counts its own
        async with store.transaction() as tx:
            assert await tally.refresh(tx, store.clock()) == 0
        assert await counts() == Counter({key: 4 * n for key, n in one_mix.items()})


async def test_an_officers_look_counts_what_the_workers_have_not_and_says_what_is_left(
        gateway: Gateway, http: httpx.AsyncClient) -> None:
    await referrals(gateway, http, "c", consenting=1, refused=1)
    office = PrivacyOffice.for_gateway(gateway)
    tally = ActivityTally()
    async with gateway.store.transaction() as tx:
        # the appends counted their records; start the tally again, as on a log the tally has never counted
        await tx.conn.execute(delete(audit_activity_cursor))
        await tx.conn.execute(delete(audit_activity_counts))
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
