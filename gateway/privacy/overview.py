"""The workers keep the privacy officers' overview current, so that the console's home answers in milliseconds
at any size of the audit log instead of reading it first.

:class:`OverviewKeeper` runs in every worker under supervision: every ``count_every_seconds`` it counts the
audit records appended since the last count into the stored 30-day tally (:mod:`gateway.privacy.activity`,
in transactions of at most 10,000 records), and when the newest stored verification of the log is older than
``verify_every_seconds`` (or there is none) it verifies the whole log and stores the outcome
(:meth:`gateway.privacy.office.PrivacyOffice.verify_integrity`), which every process's answers then carry.
A store outage is waited out; the next round catches up.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.errors import DependencyUnavailable
from gateway.logging import get_logger
from gateway.privacy.activity import BATCH, ActivityTally
from gateway.privacy.office import PrivacyOffice

__all__ = ["OverviewKeeper"]

log = get_logger(__name__)


class OverviewKeeper:
    """Keeps the stored 30-day tally and integrity status of the audit log up to date (module docstring)."""

    def __init__(self, office: PrivacyOffice, tally: ActivityTally, count_every_seconds: float,
                 verify_every_seconds: float) -> None:
        self.office = office
        self.tally = tally
        self.count_every_seconds = count_every_seconds
        self.verify_every_seconds = verify_every_seconds

    async def count(self) -> int:
        """Count everything appended since the last count; how many records were read."""
        read = 0
        while True:
            async with self.office.store.transaction() as tx:
                batch = await self.tally.refresh(tx, self.office.clock(), limit=BATCH)
            read += batch
            if batch < BATCH:
                return read

    async def verify_if_due(self) -> bool:
        """Verify the whole log if the newest stored verification is too old; whether it did."""
        found = await self.office.stored_integrity()
        if found is not None and found[1] < self.verify_every_seconds:
            return False
        status = await self.office.verify_integrity()
        log.info("audit-log-verified", verified=status.verified, tree_size=status.tree_size)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Count and verify as due until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.count()
                await self.verify_if_due()
            except DependencyUnavailable as exc:
                log.warning("privacy-overview-retrying", error_type=type(exc.__cause__ or exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.count_every_seconds)
