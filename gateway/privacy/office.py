"""The privacy office: the one object the privacy-officer API, the console and the operator's command ask.
Every answer is audited (a ``privacy-query`` record, or the ``erasure`` record) and the reports carry the
integrity status of the audit log at the time of the query. Each kind of answer lives in its own module:

- :mod:`gateway.privacy.reports`: disclosure reports (GDPR art. 15), consent histories (D-06), records of
  processing (art. 30), CSV;
- :mod:`gateway.privacy.review`: the review queue of denials, drops and emergency overrides, and its closing;
- :mod:`gateway.privacy.log_reading`: one audit record, a page of the log, the last days' activity;
- :mod:`gateway.privacy.erasure`: erasure by crypto-shredding (art. 17), by two officers;
- :mod:`gateway.privacy.integrity`: the integrity status (D-07), stored and shared between answers;
- :mod:`gateway.privacy.officer`: who asks, and the person their question names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from gateway.audit.checkpoint import KeyFormatError, VerifierKey
from gateway.audit.checkpointer import CheckpointSigningError
from gateway.policy.registry import PolicyRegistry
from gateway.privacy import erasure, log_reading, reports, review
from gateway.privacy.activity import ActivityTally, ActivityView
from gateway.privacy.erasure import ErasureRequest, ErasureResult
from gateway.privacy.integrity import (
    IntegrityCache,
    IntegrityStatus,
    latest_integrity,
    store_integrity,
    verify_log_integrity,
)
from gateway.privacy.officer import Officer, Question
from gateway.privacy.reports import DisclosureLine
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.audit.checkpointer import AuditCheckpointer
    from gateway.settings import GatewaySettings

__all__ = ["PrivacyOffice", "WiredGateway"]


class WiredGateway(Protocol):
    """What :meth:`PrivacyOffice.for_gateway` reads of a wired :class:`gateway.bootstrap.Gateway` (named by
    its shape, so that this module does not import the bootstrap that imports it)."""

    @property
    def settings(self) -> GatewaySettings: ...
    @property
    def registry(self) -> PolicyRegistry: ...
    @property
    def store(self) -> Store: ...
    @property
    def checkpointer(self) -> AuditCheckpointer: ...
    @property
    def integrity(self) -> IntegrityCache: ...


class PrivacyOffice:
    """Queries of the privacy-officer API; each one appends a ``privacy-query`` audit record."""

    def __init__(self, store: Store, registry: PolicyRegistry, instance_id: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), *, origin: str | None = None,
                 configured_keys: Sequence[VerifierKey] | None = None,
                 integrity_cache: IntegrityCache | None = None) -> None:
        self.store = store
        self.integrity_cache = integrity_cache
        """Shares recent integrity statuses between answers; None: verify for each one."""
        self.registry = registry
        self.instance_id = instance_id
        self.clock = clock
        self.origin = origin
        """The only log name checkpoints may carry (any, if None)."""
        self.configured_keys = tuple(configured_keys) if configured_keys else None
        """Public halves of the configured checkpoint signing keys; None: trust the database's keys."""

    @classmethod
    def for_gateway(cls, gateway: WiredGateway) -> PrivacyOffice:
        """The privacy office of a wired gateway, trusting the public halves of its checkpoint signing keys."""
        try:
            configured: list[VerifierKey] | None = [k.verifier for k in gateway.checkpointer.signing_keys()]
        except (CheckpointSigningError, KeyFormatError, OSError):  # no key here: trust the database's keys
            configured = None
        return cls(gateway.store, gateway.registry, gateway.settings.instance_id,
                   origin=gateway.settings.audit_origin, configured_keys=configured,
                   integrity_cache=gateway.integrity)

    def _asked(self, officer: Officer, request_id: str) -> Question:
        return Question(officer, request_id, self.instance_id, self.clock())

    # --- the audit log's integrity ---------------------------------------------------------------------------

    async def integrity(self) -> IntegrityStatus:
        """The log's integrity status: the newest stored verification (:class:`IntegrityCache` says when one is
        made anew), else verified now."""
        if self.integrity_cache is None:
            return await self.verify_integrity()
        return await self.integrity_cache.get(self.verify_integrity, self.stored_integrity)

    async def stored_integrity(self) -> tuple[IntegrityStatus, float] | None:
        """The newest stored verification and its age in seconds, if any."""
        async with self.store.transaction() as tx:
            found = await latest_integrity(tx)
        if found is None:
            return None
        status, at = found
        return status, max(0.0, (self.clock() - at).total_seconds())

    async def verify_integrity(self) -> IntegrityStatus:
        """Recompute the log and check its signed checkpoints (:mod:`gateway.privacy.integrity` says with which
        keys); the outcome is stored for every process's answers."""
        status = await verify_log_integrity(self.store, self.origin, self.configured_keys, self.clock)
        async with self.store.transaction() as tx:
            await store_integrity(tx, status, self.clock())
        return status

    # --- erasure ---------------------------------------------------------------------------------------------

    async def request_erasure(self, identifier: str, officer: Officer, request_id: str,
                              window: timedelta) -> ErasureRequest:
        """First step of an erasure (:func:`gateway.privacy.erasure.request_erasure`)."""
        return await erasure.request_erasure(self.store, identifier, self._asked(officer, request_id), window)

    async def approve_erasure(self, request_index: int, identifier: str, officer: Officer, request_id: str,
                              window: timedelta) -> ErasureResult:
        """Second step, by a different officer (:func:`gateway.privacy.erasure.approve_erasure`)."""
        return await erasure.approve_erasure(self.store, request_index, identifier,
                                             self._asked(officer, request_id), window)

    # --- reports ---------------------------------------------------------------------------------------------

    async def disclosure_report(self, identifier: str, since: datetime | None, until: datetime | None,
                                officer: Officer, request_id: str) -> tuple[list[DisclosureLine], IntegrityStatus]:
        """Every decision, disclosure and drop about the person identified by a codice fiscale (or STP/ENI)."""
        lines = await reports.disclosure_lines(self.store, self.registry, identifier, since, until,
                                               self._asked(officer, request_id))
        return lines, await self.integrity()

    async def consent_history(self, identifier: str, officer: Officer, request_id: str) -> list[dict[str, Any]]:
        """Every version of every consent of the person (:func:`gateway.privacy.reports.consent_history`)."""
        return await reports.consent_history(self.store, self.registry, identifier, self._asked(officer, request_id))

    def records_of_processing(self, officer: Officer | None = None) -> list[dict[str, Any]]:
        """Art. 30 records, one per declared flow (:func:`gateway.privacy.reports.records_of_processing`)."""
        return reports.records_of_processing(self.registry, officer)

    # --- the review queue ------------------------------------------------------------------------------------

    async def review_queue(self, officer: Officer, request_id: str, limit: int = 500,
                           reviewed: bool | None = False) -> list[dict[str, Any]]:
        """The review queue, newest first (:func:`gateway.privacy.review.review_queue`)."""
        return await review.review_queue(self.store, self._asked(officer, request_id), limit, reviewed)

    async def close_review(self, audit_index: int, resolution: str, officer: Officer, request_id: str,
                           comment: str | None = None) -> None:
        """Close an open review item with a resolution (:func:`gateway.privacy.review.close_review`)."""
        await review.close_review(self.store, audit_index, resolution, self._asked(officer, request_id), comment)

    # --- reading the audit log -------------------------------------------------------------------------------

    async def audit_record(self, index: int, officer: Officer, request_id: str
                           ) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
        """One audit record the officer may see (:func:`gateway.privacy.log_reading.audit_record`)."""
        return await log_reading.audit_record(self.store, index, self._asked(officer, request_id))

    async def audit_page(self, officer: Officer, request_id: str, before: int | None, limit: int = 50,
                         event_types: Sequence[str] = ()) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        """One page of the audit log, newest first (:func:`gateway.privacy.log_reading.audit_page`)."""
        return await log_reading.audit_page(self.store, self._asked(officer, request_id), before, limit, event_types)

    async def daily_activity(self, officer: Officer, request_id: str, tally: ActivityTally) -> ActivityView:
        """The last days' activity per flow and day (:func:`gateway.privacy.log_reading.daily_activity`)."""
        return await log_reading.daily_activity(self.store, self._asked(officer, request_id), tally)

    async def audit_query(self, query: str, officer: Officer, request_id: str, queried_ref: str | None = None,
                          subject: str | None = None) -> None:
        """Record a question asked elsewhere (records of processing, audit-log reads) in its own transaction."""
        async with self.store.transaction() as tx:
            await tx.append_audit([self._asked(officer, request_id).audit(query, subject, queried_ref)])
