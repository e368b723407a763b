"""The logs cannot carry personal data: canary values logged every way the code base logs never come out.

Logging is configured into a ``StringIO`` for each test and the previous configuration (structlog's and the
standard library's root logger) is restored afterwards, so other tests are unaffected.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import structlog

from gateway.identity.codice_fiscale import classify
from gateway.logging import REDACTED, SAFE_KEYS, get_logger
from tests.log_capture import CANARY_CF, CANARY_NAME, assert_no_canary, json_lines, log_output

__all__ = ["log_output"]  # the fixture, used by name


def test_canary_is_a_valid_codice_fiscale() -> None:
    assert classify(CANARY_CF) == "cf"


def test_value_under_a_key_outside_the_safe_list_is_replaced(log_output: io.StringIO) -> None:
    log = get_logger("tests.logging")
    log.info("tenant-seen", codice_fiscale=CANARY_CF, nome=CANARY_NAME, amount=12, nested={"cf": CANARY_CF})
    log.info("tenant %s %s", CANARY_NAME, CANARY_CF)
    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_NAME)
    entry, positional = json_lines(log_output)
    assert entry["event"] == "tenant-seen"
    assert entry["codice_fiscale"] == entry["nome"] == entry["amount"] == entry["nested"] == REDACTED
    assert entry["level"] == "info"
    assert positional["positional_args"] == REDACTED


def test_codice_fiscale_inside_a_safe_key_or_the_event_text_is_masked(log_output: io.StringIO) -> None:
    assert {"message_id", "reason", "summary_file"} <= SAFE_KEYS
    log = get_logger("tests.logging")
    log.info(f"looked up {CANARY_CF}", message_id=f"msg-{CANARY_CF}", reason=f"cf {CANARY_CF.lower()} unknown",
             summary_file={"holder": CANARY_CF}, count=3)
    log.warning("omocodia", message_id=CANARY_CF[:7] + "L" + CANARY_CF[8:])
    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_CF[8:])
    first, _second = json_lines(log_output)
    assert first["message_id"] == "msg-[cf]"
    assert first["summary_file"] == {"holder": "[cf]"}
    assert first["count"] == 3


def test_structured_values_under_safe_keys_stay_structured_and_masked(log_output: io.StringIO) -> None:
    nested: dict[str, Any] = {"files": [CANARY_CF, 2, None, True], CANARY_CF: ("a", {"deep": CANARY_CF})}
    cyclic: list[Any] = [CANARY_CF]
    cyclic.append(cyclic)
    get_logger("tests.logging").info("structured", summary_file=nested, records=cyclic)
    assert_no_canary(log_output.getvalue(), CANARY_CF)
    [entry] = json_lines(log_output)
    assert entry["summary_file"] == {"files": ["[cf]", 2, None, True], "[cf]": ["a", {"deep": "[cf]"}]}
    assert entry["records"][0] == "[cf]"


def test_exception_message_is_never_logged(log_output: io.StringIO) -> None:
    log = get_logger("tests.logging")
    try:
        raise ValueError(f"bad tenant {CANARY_CF} {CANARY_NAME}")
    except ValueError as exc:
        error = exc
        log.error("decode-failed", exc_info=exc)
        log.exception("decode-failed-again")
    try:
        raise RuntimeError("wrapper") from error
    except RuntimeError:
        log.error("chained", exc_info=True)
    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_NAME, "bad tenant")
    entries = json_lines(log_output)
    assert [e["event"] for e in entries] == ["decode-failed", "decode-failed-again", "chained"]
    assert [e["exception"]["type"] for e in entries] == [
        "builtins.ValueError", "builtins.ValueError", "builtins.RuntimeError"]
    assert all(e["exception"]["at"] and all(":" in frame for frame in e["exception"]["at"]) for e in entries)


def test_standard_library_loggers_are_redacted_too(log_output: io.StringIO) -> None:
    logging.getLogger("aiokafka").warning("consumer lost record for %s", CANARY_CF)
    logging.getLogger("aiokafka").info("below the warning floor %s", CANARY_NAME)
    logging.getLogger("sqlalchemy.engine").warning("params %(cf)s", {"cf": CANARY_CF})
    logging.getLogger("uvicorn.error").info("client said %s", CANARY_CF, extra={"nome": CANARY_NAME})
    try:
        raise KeyError(f"{CANARY_CF} {CANARY_NAME}")
    except KeyError:
        logging.getLogger("aiokafka").exception("fetch failed")
    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_NAME)
    assert "Traceback" not in output
    entries = json_lines(log_output)
    assert [e["logger"] for e in entries] == ["aiokafka", "sqlalchemy.engine", "uvicorn.error", "aiokafka"]
    assert entries[-1]["exception"]["type"] == "builtins.KeyError"


def test_request_id_bound_in_context_is_logged(log_output: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-123", nome=CANARY_NAME)
    try:
        get_logger("tests.logging").info("in-request")
        logging.getLogger("uvicorn.error").warning("stdlib in-request")
    finally:
        structlog.contextvars.clear_contextvars()
    assert_no_canary(log_output.getvalue(), CANARY_NAME)
    entries = json_lines(log_output)
    assert [e["request_id"] for e in entries] == ["req-123", "req-123"]


def test_debug_logging_is_refused_in_production() -> None:
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    for level in ("DEBUG", "debug"):
        with pytest.raises(ValidationError, match="DEBUG is refused in production"):
            GatewaySettings(environment="production", log_level=level)  # type: ignore[arg-type]
    assert GatewaySettings(environment="production", log_level="info").log_level == "INFO"  # type: ignore[arg-type]
    assert GatewaySettings(environment="demo", log_level="DEBUG").log_level == "DEBUG"


def test_a_codice_fiscale_disguised_by_separators_case_or_check_character_is_masked_too(
    log_output: io.StringIO
) -> None:
    """Issue 10 point 2: ids that hid a code behind separators were logged in clear at INFO."""
    wrong = CANARY_CF[:15] + ("A" if CANARY_CF[15] != "A" else "B")
    disguised = f"M-{CANARY_CF[:6]}-{CANARY_CF[6:11].lower()}-{CANARY_CF[11:]}-1"
    get_logger("tests.logging").info("decided", message_id=disguised, correlation_id=f"c_{wrong}",
                                     request_id=wrong[:8] + "." + wrong[8:], count=1)
    logging.getLogger("aiokafka").warning("record %s", disguised)
    output = log_output.getvalue()
    for folded in (CANARY_CF[:15], wrong[:15]):
        assert folded.lower() not in "".join(ch for ch in output.lower() if ch.isalnum())
    first, second = json_lines(log_output)
    assert first["message_id"] == first["request_id"] == "[personal-data]"
    assert first["correlation_id"] == "c_[cf]"  # contiguous: masked in place, whatever the check character
    assert first["count"] == 1 and second["event"] == "[personal-data]"


def test_at_info_a_batch_is_one_line_of_counts_and_each_message_a_debug_line(log_output: io.StringIO) -> None:
    from datetime import UTC, datetime

    from gateway.pipeline.intake import _log_batch
    from gateway.store import MessageStatus

    def status(message_id: str, state: str) -> MessageStatus:
        return MessageStatus("aler", message_id, f"corr-{message_id}", "arrears", state, None, (),
                             datetime.now(UTC), "req-1")

    batch = [status("m-1", "forwarded"), status("m-2", "denied"), status("m-3", "forwarded")]
    logging.getLogger().setLevel(logging.INFO)
    _log_batch(batch, {0: batch[0], 1: batch[1]})  # m-3 is a replay
    lines = json_lines(log_output)
    assert [(e["event"], e["messages"], e["forwarded"], e["denied"], e["replays"]) for e in lines] == [
        ("batch-decided", 3, 1, 1, 1)]
    logging.getLogger().setLevel(logging.DEBUG)
    _log_batch(batch, {0: batch[0], 1: batch[1]})
    events = [e["event"] for e in json_lines(log_output)][1:]
    assert events == ["batch-decided", "message-decided", "message-decided", "replay-ignored"]
