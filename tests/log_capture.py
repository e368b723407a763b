"""Logging captured for a test: the gateway's logging configured at DEBUG into a fresh stream (the previous
configuration, structlog's and the standard library's root logger, restored afterwards), canary values of a
person, and the checks that none of them came out."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from gateway.identity.synthetic import synthetic_codice_fiscale
from gateway.logging import configure_logging

__all__ = ["CANARY_CF", "CANARY_NAME", "CANARY_SURNAME", "assert_no_canary", "json_lines", "log_output"]

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
