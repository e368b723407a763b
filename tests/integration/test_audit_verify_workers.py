"""``gateway audit verify`` on a long log: worker processes check it (``gateway.audit.verify_worker``), on both
pairs of backends.

The tamper tests run every scenario both in this process and in workers and require the same report; here,
the choice the verifier makes by itself (workers from :data:`~gateway.audit.offline.WORKERS_FROM` blocks on),
and what happens when the workers cannot open the database: the log is checked in this process, with a
warning saying so, never skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.audit import offline
from gateway.audit.offline import verify_stored_log
from gateway.audit.record import AuditRecord
from gateway.bootstrap import Gateway
from gateway.store import Store
from tests.conftest import QUIET_CHECKPOINTER

pytestmark = QUIET_CHECKPOINTER

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def append(gateway: Gateway, count: int) -> None:
    async with gateway.store.transaction() as tx:
        start = (await tx.audit_head()).size
        await tx.append_audit([
            AuditRecord(event_type="decision", action="deny", occurred_at=NOW, outcome="deny",
                        reason="no-applicable-consent", purpose="microcredit-assessment", instance="test",
                        message_ids=(f"m-{start + i}",))
            for i in range(count)])


async def test_a_long_log_is_checked_by_workers_with_the_same_report(gateway: Gateway,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    await append(gateway, 37)
    await gateway.checkpointer.checkpoint_now()
    await append(gateway, 3)
    started: list[int] = []
    original = offline._blocks_in_workers

    def counting(*args: Any) -> Any:
        started.append(args[3])
        return original(*args)

    monkeypatch.setattr(offline, "_blocks_in_workers", counting)
    origin = gateway.settings.audit_origin
    done: list[tuple[int, int]] = []
    by_default = await verify_stored_log(gateway.store, origin, page_size=4,  # 11 blocks: workers
                                         progress=lambda records, total: done.append((records, total)))
    assert started and started[0] >= 2
    assert done[-1] == (40, 40) and [r for r, _ in done] == sorted(r for r, _ in done), done
    in_process = await verify_stored_log(gateway.store, origin, page_size=4, workers=0)
    assert len(started) == 1
    assert by_default == in_process
    assert by_default.ok and by_default.size == 40 and by_default.checkpoints == 1, by_default


async def test_workers_that_cannot_open_the_database_leave_the_check_to_this_process(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await append(gateway, 20)
    await gateway.checkpointer.checkpoint_now()

    def unreachable(_store: Store) -> dict[str, str]:
        return {"dialect": "sqlite", "target": "/nonexistent-directory/audit.sqlite3"}

    monkeypatch.setattr(offline, "_worker_target", unreachable)
    report = await verify_stored_log(gateway.store, gateway.settings.audit_origin, page_size=4, workers=2)
    assert report.ok and report.size == 20 and report.checkpoints == 1, report
    assert len(report.warnings) == 1 and "checked in this process" in report.warnings[0], report.warnings
