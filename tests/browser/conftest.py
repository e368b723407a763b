"""Browser tests of the privacy officers' console: Debian's Chromium driven by Playwright, against one gateway on
the real Kafka broker and PostgreSQL server, served by uvicorn on a local port as a deployment serves it.

One event loop, one gateway, one HTTP server and one browser for the whole session (the browser is the costly
part); each test gets its own browser context (its own cookies) and its own officer account. axe-core (installed
by ``scripts/test.sh`` from ``tools/console-browser``, as locked there) is added to every page before its own
scripts run, outside the page's Content-Security-Policy. Every log line of the session (the gateway's, and
uvicorn's access log, which the gateway keeps quiet by default, turned on) is kept in ``Console.logs`` so that
tests can show that no identifier reached a log.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
import structlog
import uvicorn

from gateway.api import create_app
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.logging import configure_logging
from gateway.settings import GatewaySettings, TopicSettings
from tests.conftest import KAFKA_ENV, POSTGRES_ENV, _fresh_postgres_database, harness_grants, require_env
from tests.kafka_access import GATEWAY, kafka_access

if TYPE_CHECKING:
    from playwright.async_api import Page

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "tools" / "console-browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "tests" / "results" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Console:
    """The running console: its gateway, its address and the log lines written so far."""

    gateway: Gateway
    base_url: str
    logs: io.StringIO


def _require(path: Path, what: str) -> None:
    if not path.is_file():
        message = f"{what} is missing at {path}: run ./scripts/test.sh, which installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def console(tmp_path_factory: pytest.TempPathFactory,
                  clients: tuple[PartnerClient, ...]) -> AsyncIterator[Console]:
    """A gateway on the real broker and database, its API and console served by uvicorn on 127.0.0.1."""
    url, drop = await _fresh_postgres_database(require_env(POSTGRES_ENV, "PostgreSQL"))
    access = kafka_access(require_env(KAFKA_ENV, "Kafka"))
    topics = TopicSettings(prefix=f"b{uuid.uuid4().hex[:8]}.", partitions=2)
    await access.grant(harness_grants(topics.prefix))
    settings = GatewaySettings(data_dir=tmp_path_factory.mktemp("console") / "var", bus="kafka", database_url=url,
                               privacy_integrity_max_age_seconds=0, topics=topics,
                               **access.settings(GATEWAY))  # type: ignore[arg-type]
    saved_structlog, root = structlog.get_config(), logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logs = io.StringIO()
    configure_logging("INFO", stream=logs)
    access_log = logging.getLogger("uvicorn.access")  # quiet by default (and silenced by any server started with
    saved_access = access_log.level, access_log.propagate  # access_log=False): on here, to show URLs name no one
    access_log.setLevel(logging.INFO)
    access_log.propagate = True
    gateway = build(settings, clients=clients)
    await gateway.start()
    server = uvicorn.Server(uvicorn.Config(create_app(gateway, manage_lifecycle=False), host="127.0.0.1", port=0,
                                           log_config=None, lifespan="off", access_log=True))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Console(gateway, f"http://127.0.0.1:{port}", logs)
    finally:
        server.should_exit = True
        await serving
        await gateway.stop()
        root.handlers, root.level = saved_handlers, saved_level
        access_log.setLevel(saved_access[0])
        access_log.propagate = saved_access[1]
        structlog.configure(**saved_structlog)
        await drop()  # type: ignore[misc]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[object]:
    """Debian's Chromium, launched once for the session by Playwright."""
    _require(CHROMIUM, "Debian's Chromium (/usr/bin/chromium)")
    _require(AXE, "axe-core")
    from playwright.async_api import async_playwright

    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def first_disclosure(page: Page, identifier: str) -> str:
    """Search the person page for ``identifier`` (typed into the form, as an officer does) and return the text of
    the first disclosure row of the answer."""
    await page.get_by_role("link", name="Persona (art. 15)").click()
    await page.get_by_label("Codice fiscale, STP o ENI").fill(identifier)
    await page.get_by_role("button", name="Cerca").click()
    disclosures = page.locator("section[aria-labelledby='disclosures-h'] tbody tr")
    await disclosures.first.wait_for()
    return await disclosures.first.inner_text()
