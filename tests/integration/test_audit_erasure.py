"""T-09: crypto-shredding a subject unlinks them from the audit log while the log still verifies.

The audit log never names a person: records carry a reference keyed by the subject's own key. Erasure
(:meth:`StoreTransaction.erase_subject`) destroys that key and replaces the subject's lookup hash with a random
value, so neither their identifier nor their pseudonym leads to their records any more; not one byte of the
log changes, so every hash and signed checkpoint still verifies. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from gateway.audit.offline import verify_stored_log
from gateway.audit.record import AuditRecord, subject_ref
from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.simulators import fhir_consent
from gateway.store.tables import audit_log, subjects
from tests.conftest import QUIET_CHECKPOINTER

pytestmark = QUIET_CHECKPOINTER


def decision_about(key: bytes, n: int) -> AuditRecord:
    return AuditRecord(event_type="decision", action="forward", occurred_at=datetime.now(UTC), outcome="permit",
                       purpose="microcredit-assessment", instance="test", subject_ref=subject_ref(key),
                       message_ids=(f"m-{n}",))


async def log_bytes(gateway: Gateway) -> list[tuple[int, str, bytes, bytes, str | None]]:
    async with gateway.store.transaction() as tx:
        rows = await tx.conn.execute(select(audit_log.c.idx, audit_log.c.record, audit_log.c.leaf_hash,
                                            audit_log.c.chain_hash, audit_log.c.subject_ref).order_by(audit_log.c.idx))
        return [(r.idx, r.record, bytes(r.leaf_hash), bytes(r.chain_hash), r.subject_ref) for r in rows]


async def test_T09_crypto_shredding_unlinks_the_subject_and_the_log_still_verifies(gateway: Gateway) -> None:
    person, other = (t.cf for t in generate_tenants("S", seed=9, limit=2))
    consent = await gateway.consents.record(fhir_consent(person), "aler", "aler-test", "req-consent")
    pseudonym = consent.subject_pseudonym
    async with gateway.store.transaction() as tx:
        subject = await tx.subject_by_pseudonym(pseudonym)
        bystander = await tx.subject("cf", other, create=True)
        assert subject is not None and subject.subject_key is not None
        assert bystander is not None and bystander.subject_key is not None
        await tx.append_audit([decision_about(subject.subject_key, i) for i in range(3)])
        await tx.append_audit([decision_about(bystander.subject_key, i) for i in range(2)])
    key = subject.subject_key
    await gateway.checkpointer.checkpoint_now()
    async with gateway.store.transaction() as tx:
        assert len(await tx.audit_records_for(key)) == 4  # the consent change and three decisions
        old_lookup = (await tx.conn.execute(
            select(subjects.c.lookup_hash).where(subjects.c.pseudonym == pseudonym))).scalar_one()
    before = await log_bytes(gateway)

    async with gateway.store.transaction() as tx:
        assert await tx.erase_subject(pseudonym)

    async with gateway.store.transaction() as tx:
        erased = await tx.subject_by_pseudonym(pseudonym)
        assert erased is not None and erased.subject_key is None  # the row stays, the key is gone
        assert await tx.subject("cf", person, create=False) is None  # the identifier no longer leads to them
        new_lookup = (await tx.conn.execute(
            select(subjects.c.lookup_hash).where(subjects.c.pseudonym == pseudonym))).scalar_one()
        assert new_lookup != old_lookup and new_lookup != gateway.store.lookup_hash("cf", person)
        assert [c.consent_id for c in await tx.consents_for(pseudonym)] == [consent.consent_id]  # foreign keys hold
        reborn = await tx.subject("cf", person, create=True)  # a later message starts an unlinked pseudonym
        assert reborn is not None and reborn.pseudonym != pseudonym and reborn.subject_key not in (None, key)
        assert reborn.subject_key is not None
        assert await tx.audit_records_for(reborn.subject_key) == []
        assert len(await tx.audit_records_for(bystander.subject_key)) == 2  # nobody else is affected
        assert not await tx.erase_subject("sbj_nobody")

    assert await log_bytes(gateway) == before  # not one byte of the log changed
    await gateway.checkpointer.checkpoint_now()
    report = await verify_stored_log(gateway.store, gateway.settings.audit_origin)
    assert report.ok and report.size == 6 and report.checkpoints == 2, report
