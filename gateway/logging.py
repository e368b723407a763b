"""Structured JSON logs that cannot carry personal data.

One JSON object per line (structlog). The request id is bound per HTTP request and per consumed Kafka
message through :mod:`structlog.contextvars`. Two processors make the privacy guarantee:

* :func:`redact` keeps only keys from :data:`SAFE_KEYS` (identifiers the gateway itself minted, codes,
  counts); the value of any other key is replaced, whatever it is, and any string that looks like a codice
  fiscale is masked even under a safe key — and a string that hides one behind separators, letter case or a
  wrong check character (:func:`gateway.identity.codice_fiscale.contains_person_identifier`) is replaced
  whole;
* :func:`render_exception` logs an exception as its type and the code locations of its traceback, never its
  message: library messages (pydantic's among them) echo the offending input.

Standard-library loggers (uvicorn, aiokafka, SQLAlchemy) go through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

import structlog

from gateway.identity.codice_fiscale import contains_person_identifier

__all__ = ["PINNED_LOGGERS", "SAFE_KEYS", "configure_logging", "get_logger", "redact"]

SAFE_KEYS = frozenset(
    {
        "event", "level", "timestamp", "logger", "request_id", "correlation_id", "message_id",
        "message_type", "partner", "sender", "recipient", "flow", "purpose", "outcome", "reason",
        "topic", "partition", "offset", "status_code", "method", "path", "duration_ms", "count",
        "error_type", "problem_type", "instance", "client_id", "decision_id", "group", "records",
        "exception", "url", "port", "host", "backend", "store", "bus", "tree_size", "index",
        "batch", "attempt", "retry_in_s", "version", "summary_file", "state", "messages", "forwarded", "denied",
        "replays", "verified", "subjects", "lineages", "shapes", "seconds",
    }
)
"""Log keys whose values are gateway-minted identifiers, codes or numbers — never personal data."""

PINNED_LOGGERS = (
    "aiokafka", "kafka", "sqlalchemy", "aiosqlite", "asyncpg", "alembic", "uvicorn.access", "httpx", "httpcore",
    "httpx2", "httpcore2",
    "authlib", "joserfc", "multipart", "python_multipart", "fhir", "fhir_core", "asyncio",
)
"""Library loggers held at WARNING (or above) whatever the root level: at DEBUG the database drivers and the ORM
log statements with their parameters (pseudonyms, consent documents, a withdrawal's free text), which
:func:`redact` cannot tell from ordinary text because a standard-library line is one string."""

REDACTED = "[redacted]"
_CF_PATTERN = re.compile(
    r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPR-T][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]", re.IGNORECASE
)


def _scrub(value: Any, depth: int = 0) -> Any:
    """``value`` with codice-fiscale look-alikes masked; JSON structure (objects, arrays) is kept."""
    if isinstance(value, str):
        masked = _CF_PATTERN.sub("[cf]", value)
        return "[personal-data]" if contains_person_identifier(masked) else masked
    if isinstance(value, bool | int | float) or value is None:
        return value
    if depth < 8 and isinstance(value, dict):
        return {_scrub(str(k)): _scrub(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return _scrub(str(value), depth)


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of every key outside :data:`SAFE_KEYS`; mask codice-fiscale look-alikes."""
    for key in list(event_dict):
        if key in SAFE_KEYS:
            event_dict[key] = _scrub(event_dict[key])
        else:
            event_dict[key] = REDACTED
    return event_dict


def render_exception(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Turn ``exc_info`` into the exception type and traceback locations, dropping the message."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        exc_type, _exc, tb = exc_info
        if exc_type is not None:
            frames = [f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(tb)]
            event_dict["exception"] = {"type": f"{exc_type.__module__}.{exc_type.__qualname__}", "at": frames}
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        render_exception,
        redact,
    ]


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send structlog and standard-library logs, redacted, as JSON lines to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[_drop_stdlib_args, *_shared_processors()],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in PINNED_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        # A call below the level stops at the first processor, before the clock, redaction and rendering.
        processors=[structlog.stdlib.filter_by_level, *_shared_processors(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _drop_stdlib_args(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Standard-library records are rendered with their %-args already merged; scrub that text too."""
    event_dict.pop("positional_args", None)
    return event_dict


def get_logger(name: str) -> Any:
    """A structlog logger for module ``name``."""
    return structlog.stdlib.get_logger(name)
