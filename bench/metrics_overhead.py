"""What the metrics hooks cost the hot path: the intake's per-batch hook (messages by partner and outcome,
decisions by flow and reason, the commit latency of each message) and the relay's (deliveries by recipient,
the delivery latency of each row), timed on batches of 200 as the consumer and the relay take them, with
tracing off (the default). Prints microseconds per message; compare with the gateway's ~1.2 ms of CPU per
referral (bench/README.md).

    .venv/bin/python -m bench.metrics_overhead
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from gateway.audit.record import AuditRecord
from gateway.observability.observer import PipelineObserver
from gateway.store.models import MessageStatus, OutboxRow

BATCH = 200
ROUNDS = 500


def main() -> None:
    now = datetime.now(UTC)
    statuses = [MessageStatus(sender="aler", message_id=f"m-{i}", correlation_id=f"c-{i}",
                              message_type="segnalazione-morosita", state="forwarded" if i % 2 else "denied",
                              reason_class=None, recipients=("fwa",), received_at=now) for i in range(BATCH)]
    decided = dict(enumerate(statuses))
    audit = [AuditRecord(event_type="decision", action="forward" if i % 2 else "deny", occurred_at=now,
                         outcome="permit" if i % 2 else "deny", reason=None if i % 2 else "no-applicable-consent",
                         flow_id="F1", instance="bench", message_ids=(f"m-{i}",)) for i in range(BATCH)]
    rows = [OutboxRow(topic="out.fwa" if i % 2 else "status.aler", recipient="fwa" if i % 2 else "aler",
                      message_id=f"gw-{i}", value=b"{}", key=b"k", headers=(("request-id", f"r-{i}"),),
                      created_at=now) for i in range(BATCH)]
    observer = PipelineObserver()
    items: list = []  # tracing off: the hook does not look at the items
    started = time.perf_counter()
    for _ in range(ROUNDS):
        observer.batch(items, list(rows), now).committed(statuses, decided, audit)
    intake_us = (time.perf_counter() - started) / (ROUNDS * BATCH) * 1e6
    started = time.perf_counter()
    for _ in range(ROUNDS):
        observer.delivered(rows, now)
    relay_us = (time.perf_counter() - started) / (ROUNDS * BATCH) * 1e6
    print(f"intake hook: {intake_us:.2f} us per message; relay hook: {relay_us:.2f} us per delivered row "
          f"(batches of {BATCH}, {ROUNDS} rounds)")


if __name__ == "__main__":
    main()
