"""The ``pipeline`` fixture of the fast pipeline tests in this folder: the gateway's intake, consent registry and
relay over the in-memory store and an embedded bus (:mod:`tests.pipeline_harness`), fresh for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.pipeline_harness import Pipeline, memory_pipeline


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    async with memory_pipeline(tmp_path) as made:
        yield made
