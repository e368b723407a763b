"""``bench/delay_proxy.py``, the simulated distant database of ``bench/f1_throughput.py --database-round-trip-ms``:
every byte arrives, in order, and each round trip through it takes at least the delay asked for."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _proxy_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("delay_proxy", ROOT / "bench" / "delay_proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _round_trips(port: int, messages: list[bytes]) -> tuple[list[float], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times, received = [], b""
    for message in messages:
        started = time.monotonic()
        writer.write(message)
        await writer.drain()
        got = await reader.readexactly(len(message))
        times.append(time.monotonic() - started)
        received += got
    pipelined = b"".join(messages)  # many writes in flight at once: delayed together, not one after another
    started = time.monotonic()
    writer.write(pipelined)
    await writer.drain()
    received += await reader.readexactly(len(pipelined))
    times.append(time.monotonic() - started)
    writer.write_eof()  # the end passes through the proxy and back, so every task of the chain has ended
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    return times, received


async def test_the_proxy_delays_each_round_trip_and_keeps_every_byte_in_order() -> None:
    proxy = _proxy_module()
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    delayed = await proxy.serve("127.0.0.1", echo.sockets[0].getsockname()[1], one_way_ms=20.0)
    messages = [bytes([n]) * (1 + 5000 * n) for n in range(8)]
    async with echo, delayed:
        times, received = await _round_trips(delayed.sockets[0].getsockname()[1], messages)
    assert received == b"".join(messages) * 2
    assert min(times) >= 0.040  # 20 ms each way
    assert times[-1] < 0.040 * len(messages)  # the pipelined writes were not delayed one behind another


async def test_without_delay_the_proxy_only_forwards() -> None:
    proxy = _proxy_module()
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    direct = await proxy.serve("127.0.0.1", echo.sockets[0].getsockname()[1], one_way_ms=0.0)
    async with echo, direct:
        times, received = await _round_trips(direct.sockets[0].getsockname()[1], [b"ping", b"pong" * 1000])
    assert received == (b"ping" + b"pong" * 1000) * 2
    assert max(times) < 0.040
