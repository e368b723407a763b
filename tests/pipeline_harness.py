"""The pipeline over the in-memory store, for fast tests of its logic: which flow permits what, why a message is
denied, which fields and labels cross, how people are matched, how a referral's lifecycle moves.

:func:`memory_pipeline` wires the intake as :func:`gateway.bootstrap.build` does (the packaged flow registry, the
built-in partners' decoders and encoders, the crosswalk's tokens), the consent registry
(:class:`~gateway.consents.service.ConsentService`) and the relay publishing to the embedded bus (the gateway's
own single-machine log, in a temporary file). Only the store is :class:`~gateway.store.memory.MemoryStore`,
which ``tests/contract`` holds to the same answers as SQLite and PostgreSQL. A test submits a partner's native
message as the inbound consumer would, and reads what each recipient received on its topic (every record checked
against its AsyncAPI channel, as the end-to-end tests do), the statuses, the audit log (verified first) and the
deliveries dropped; each case takes milliseconds.

What stays on the full gateway over both real backends (``tests/e2e``, ``tests/integration``): HTTP, Kafka
topics, keys and ACLs, dead-lettering by the consumer, PostgreSQL's locking, restarts, and at least one case per
flow end to end.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.audit.verify import verify_log
from gateway.bus import BusRecord, EmbeddedBus
from gateway.consents.service import ConsentService
from gateway.contracts.asyncapi import validate_against_channel
from gateway.identity.crosswalk import Crosswalk
from gateway.partners import built_in
from gateway.pipeline import Intake, Submission
from gateway.pipeline.relay import Relay
from gateway.policy import PolicyRegistry, load_registry
from gateway.policy.consent import ConsentRecord
from gateway.routing import decoders_of, encoders_of
from gateway.settings import TopicSettings
from gateway.simulators import fhir_consent
from gateway.store import MessageStatus
from gateway.store.memory import MemoryStore

__all__ = ["PSEUDONYM_KEY", "Pipeline", "Trail", "memory_pipeline"]

PSEUDONYM_KEY = b"p" * 32
INSTANCE = "unit-memory"
CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"

Trail = list[tuple[str, str, str | None]]
"""(message id, state, lifecycle) of each message of a referral, in order."""


@functools.cache
def _asyncapi() -> dict[str, Any]:
    return json.loads((CONTRACTS / "asyncapi.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@functools.cache
def packaged_registry() -> PolicyRegistry:
    """The packaged flow registry, read once per test run."""
    return load_registry()


@dataclass
class Pipeline:
    """The gateway's pipeline on :class:`MemoryStore` and an embedded bus; see the module docstring."""

    store: MemoryStore
    intake: Intake
    relay: Relay
    consents: ConsentService
    bus: EmbeddedBus
    topics: TopicSettings
    registry: PolicyRegistry

    async def submit(self, partner: str, message: dict[str, Any], content_type: str = "application/json", *,
                     deliver: bool = True, request_id: str = "req-unit") -> list[MessageStatus]:
        """Decide ``message`` as the inbound consumer does for ``in.<partner>``, then (unless ``deliver`` is
        false) let the relay publish everything queued, as the running gateway's relay would."""
        statuses = await self.intake.submit(Submission(sender=partner, sender_role="system",
                                                       raw=orjson.dumps(message), content_type=content_type,
                                                       request_id=request_id, client_id=f"kafka:{partner}"))
        if deliver:
            await self.relay.drain()
        return statuses

    async def consent(self, cf: str, **terms: Any) -> ConsentRecord:
        """Record ALER's consent for ``cf`` (terms as :func:`gateway.simulators.fhir_consent` takes them)."""
        return await self.consents.record(fhir_consent(cf, **terms), "aler", "aler-test", "req-consent")

    async def read(self, kind: str, partner: str) -> list[BusRecord]:
        """Everything published on ``kind.partner`` so far, oldest first; each record matches its AsyncAPI
        channel."""
        records = await self.bus.read(self.topics.name(kind, partner), 0, 0, max_records=10_000)
        for record in records:
            headers = {name: value.decode() for name, value in record.headers}
            problems = validate_against_channel(_asyncapi(), record.topic, orjson.loads(record.value), headers,
                                                prefix=self.topics.prefix)
            assert problems == [], f"{record.topic}: {problems}"
        return records

    async def audit(self) -> list[dict[str, Any]]:
        """Every audit record, oldest first, after checking that the log verifies."""
        async with self.store.transaction() as tx:
            head = await tx.audit_head()
            # the records the head counts: a running gateway may append after the head was read
            entries = await tx.audit_entries(0, head.size)
        report = verify_log(entries, head)
        assert report.ok, report
        return [json.loads(e["record"]) for e in entries]

    async def decisions(self) -> list[tuple[str | None, str, str | None]]:
        """(flow, outcome, reason) of every decision audited, in order."""
        return [(r.get("flow_id"), r["outcome"], r.get("reason"))
                for r in await self.audit() if r["event_type"] == "decision"]

    async def dropped(self) -> list[dict[str, Any]]:
        """The audit records of deliveries the relay dropped (a consent withdrawn or lapsed since the decision)."""
        return [r for r in await self.audit() if r["event_type"] == "delivery-dropped"]

    async def status(self, sender: str, message_id: str) -> MessageStatus | None:
        async with self.store.transaction() as tx:
            return await tx.message(sender, message_id)

    async def status_trail(self, sender: str) -> Trail:
        """What ``sender`` received on its status topic, in order."""
        return [(s["message_id"], s["state"], s["lifecycle"])
                for s in (orjson.loads(r.value) for r in await self.read("status", sender))]

    async def correlation(self, sender: str, correlation_id: str) -> Trail:
        """``sender``'s view of a referral by correlation id, as ``GET /v1/partners/{sender}/correlations/{id}``
        answers it: (message id, state, lifecycle) of each of its messages; a lifecycle state always comes with
        the time it was reached."""
        async with self.store.transaction() as tx:
            statuses = await tx.messages_by_correlation(sender, correlation_id)
        assert statuses, f"{sender} sent no message with correlation id {correlation_id}"
        assert all((s.lifecycle is None) == (s.lifecycle_at is None) for s in statuses), statuses
        return [(s.message_id, s.state, s.lifecycle) for s in statuses]


@asynccontextmanager
async def memory_pipeline(bus_dir: Path, registry: PolicyRegistry | None = None) -> AsyncIterator[Pipeline]:
    """A :class:`Pipeline` on a fresh :class:`MemoryStore`, its embedded bus in ``bus_dir`` with every topic the
    gateway creates at start."""
    registry = registry or packaged_registry()
    store = MemoryStore(PSEUDONYM_KEY)
    topics = TopicSettings(prefix="", partitions=1)
    partners = built_in()
    intake = Intake(store, registry, topics, decoders_of(partners), encoders_of(partners), INSTANCE, 1_000_000,
                    tokenise=Crosswalk(PSEUDONYM_KEY).token)
    bus = EmbeddedBus(bus_dir / "bus.sqlite3", partitions=1)
    await bus.start()
    names = [topics.name(kind, p) for p in registry.exchanging() for kind in ("in", "out", "status", "dlq")]
    restricted = sorted({f.recipient for f in registry.flows if f.restricted_topic})
    await bus.ensure_topics([*names, *(topics.name("s4.out", p) for p in restricted), topics.consent_events()])
    try:
        relay = Relay(store, bus, INSTANCE, registry=registry, consent_index=intake.consent_index)  # as in bootstrap
        yield Pipeline(store, intake, relay,
                       ConsentService(store, registry, INSTANCE, topics), bus, topics, registry)
    finally:
        await bus.stop()
