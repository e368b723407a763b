"""Status messages sent back to a sender on ``status.<sender>`` (and served over HTTP).

A status names the outcome and a reason class, never the reason behind a consent denial (rule 13).
"""

from __future__ import annotations

import orjson

from gateway.store.models import MessageStatus

__all__ = ["status_body", "status_message"]


def status_body(status: MessageStatus) -> dict[str, object]:
    return {
        "message_type": "referral.status",
        "message_id": status.message_id,
        "correlation_id": status.correlation_id,
        "state": status.state,
        "reason_class": status.reason_class,
        "recipients": list(status.recipients),
        "lifecycle": status.lifecycle,
        "at": (status.lifecycle_at or status.received_at).isoformat(),
    }


def status_message(status: MessageStatus) -> bytes:
    return orjson.dumps(status_body(status))
