"""W3C Trace Context (https://www.w3.org/TR/trace-context/): the trace id a partner's ``traceparent`` carries.

A partner that traces its own calls sends ``traceparent: 00-<trace id>-<parent id>-<flags>`` on HTTP or as a
Kafka header; the gateway records the trace id in the audit records of that message, so a privacy officer
can line a decision up with the partner's own logs. Anything malformed is ignored, never an error.
"""

from __future__ import annotations

import re

__all__ = ["trace_id_of"]

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a ``traceparent`` value, or None when absent, malformed or all zeros (invalid)."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    if match is None or match.group(1) == "ff" or set(match.group(2)) == {"0"} or set(match.group(3)) == {"0"}:
        return None
    return match.group(2)
