"""The logs cannot carry personal data: canary values logged every way the code base logs never come out.

Logging is configured into a ``StringIO`` for each test and the previous configuration (structlog's and the
standard library's root logger) is restored afterwards, so other tests are unaffected.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import structlog

from gateway.identity.codice_fiscale import classify
from gateway.identity.synthetic import generate_tenants, synthetic_codice_fiscale
from gateway.logging import REDACTED, SAFE_KEYS, configure_logging, get_logger
from gateway.simulators.partners import aler_arrears_message, fhir_consent
from tests.conftest import bearer

CANARY_CF = synthetic_codice_fiscale(random.Random(7))
CANARY_NAME = "CANARYGIULIA"
CANARY_SURNAME = "CANARYROSSI"


def _logger_levels() -> dict[str, int]:
    return {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
            if isinstance(logger, logging.Logger)}


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Gateway logging configured at DEBUG into a fresh stream; everything put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = _logger_levels()
    was_configured, config = structlog.is_configured(), structlog.get_config()
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    ours = root.handlers[:]
    try:
        yield stream
    finally:
        for handler in ours:
            root.removeHandler(handler)
        # pytest's own capture handlers are per test phase and re-added by pytest; keep any other handler.
        for handler in handlers:
            if type(handler).__module__ != "_pytest.logging" and handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        for name in _logger_levels():  # configure_logging raises the floor of noisy library loggers
            logging.getLogger(name).setLevel(levels.get(name, logging.NOTSET))
        if was_configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line of the output, each of which must be one JSON object."""
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(entry, dict) for entry in parsed)
    return parsed


def assert_no_canary(output: str, *canaries: str) -> None:
    """None of the canaries appears, in any letter case."""
    for canary in canaries:
        assert canary.lower() not in output.lower()


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


async def delivered_inbox(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """The text of FWA's inbox once it holds a message (the relay publishes asynchronously)."""
    async with asyncio.timeout(30):
        while True:
            response = await http.get("/v1/partners/fwa/inbox", headers=headers)
            assert response.status_code == 200, response.text
            if response.json()["messages"]:
                return response.text
            await asyncio.sleep(0.05)


async def test_full_submission_over_http_logs_no_canary(log_output: io.StringIO, http: httpx.AsyncClient) -> None:
    tenant = replace(next(generate_tenants("S", 7, 1)), cf=CANARY_CF, given_name=CANARY_NAME,
                     family_name=CANARY_SURNAME)
    aler = await bearer(http, "aler-test")

    consent = await http.post("/v1/consents", json=fhir_consent(tenant.cf), headers=aler)
    assert consent.status_code == 201, consent.text
    message = aler_arrears_message(tenant, "canary-0001")
    accepted = await http.post("/v1/partners/aler/messages", json=message, headers=aler)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()[0]["state"] == "forwarded"
    replayed = await http.post("/v1/partners/aler/messages", json=message, headers=aler)
    assert replayed.status_code == 202, replayed.text
    # The canary really crossed the gateway: FWA receives it once the relay has published the message.
    fwa = await bearer(http, "fwa-test")
    inbox = await delivered_inbox(http, fwa)
    assert CANARY_CF in inbox

    bad = aler_arrears_message(tenant, "canary-0002")
    bad["nome"] = CANARY_NAME
    bad["contratto"]["quartiere"] = CANARY_SURNAME
    bad["nucleo"]["tipologia"] = f"{CANARY_SURNAME} {CANARY_CF}"
    refused = await http.post("/v1/partners/aler/messages", json=bad, headers=aler)
    assert refused.status_code == 422, refused.text
    assert_no_canary(refused.text, CANARY_CF, CANARY_NAME, CANARY_SURNAME)

    bad_consent = fhir_consent(CANARY_CF[:15] + ("A" if CANARY_CF[15] != "A" else "B"))
    refused_consent = await http.post("/v1/consents", json=bad_consent, headers=aler)
    assert refused_consent.status_code == 422, refused_consent.text
    assert_no_canary(refused_consent.text, CANARY_CF[:15])

    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_CF[:15], CANARY_NAME, CANARY_SURNAME)
    entries = json_lines(log_output)
    events = {e["event"] for e in entries}
    assert {"batch-decided", "message-decided", "replay-ignored", "request-refused"} <= events


async def test_at_debug_no_sql_parameter_pseudonym_or_withdrawal_text_reaches_the_logs(
    log_output: io.StringIO, http: httpx.AsyncClient, gateway: Any
) -> None:
    """Issue 10 point 9: the root logger at DEBUG (``log_output``), a consent recorded, a message forwarded
    and the consent withdrawn with free text holding a name and a street address: the drivers' and the ORM's
    debug lines (SQL with its parameters) stay out, so no canary, pseudonym or text comes out."""
    from sqlalchemy import select

    from gateway.logging import PINNED_LOGGERS
    from gateway.store.tables import subjects

    street = "VIA CANARINO 12"
    tenant = replace(next(generate_tenants("S", 9, 1)), cf=CANARY_CF, given_name=CANARY_NAME)
    aler = await bearer(http, "aler-test")
    consent = await http.post("/v1/consents", json=fhir_consent(tenant.cf), headers=aler)
    assert consent.status_code == 201, consent.text
    accepted = await http.post("/v1/partners/aler/messages", json=aler_arrears_message(tenant, "debug-1"),
                               headers=aler)
    assert accepted.status_code == 202, accepted.text
    withdrawn = await http.post(f"/v1/consents/{consent.json()['consent_id']}/withdraw", headers=aler,
                                json={"by": "subject", "channel": "phone", "evidence": f"{CANARY_NAME}, {street}"})
    assert withdrawn.status_code == 200, withdrawn.text
    async with gateway.store.transaction() as tx:
        pseudonyms = [row[0] for row in (await tx.conn.execute(select(subjects.c.pseudonym))).all()]
    assert pseudonyms
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.WARNING for name in PINNED_LOGGERS)
    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_NAME, street, *pseudonyms)
    driver_lines = [e for e in json_lines(log_output)
                    if e.get("logger", "").split(".")[0] in {"sqlalchemy", "aiosqlite", "asyncpg"}
                    and e["level"] in ("debug", "info")]
    assert driver_lines == []


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
