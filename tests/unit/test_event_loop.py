"""The long-running commands run on the event loop the settings name (:mod:`gateway.event_loop`)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from gateway.event_loop import run
from gateway.settings import GatewaySettings


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_default_loop_is_uvloop_and_it_is_installed() -> None:
    assert GatewaySettings().event_loop == "uvloop"
    assert run(_loop_module()).startswith("uvloop")


def test_the_standard_loop_is_chosen_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_EVENT_LOOP", "asyncio")
    name = GatewaySettings().event_loop
    assert name == "asyncio"
    assert run(_loop_module(), name) == "asyncio.unix_events"


def test_an_unknown_loop_is_refused_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="event_loop"):
        GatewaySettings()


def test_run_returns_the_result_and_closes_its_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return 7

    assert run(main()) == 7
    assert isinstance(loops[0], uvloop.Loop) and loops[0].is_closed()
