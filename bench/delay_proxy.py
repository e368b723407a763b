#!/usr/bin/env python3
"""A TCP proxy that delays every byte by a fixed time each way: a database on another host, simulated.

``bench/f1_throughput.py --database-round-trip-ms N`` puts one between the gateway and PostgreSQL, so that the
throughput and latency of a run with the database N ms away can be set beside a run through the same proxy with
no delay (``--database-round-trip-ms 0``): the proxy's own CPU is then in both, and the difference is the round
trips'. The kernel's own delay (``tc qdisc ... netem``) is the usual tool, but it needs the ``sch_netem`` module,
which machines without it refuse ("Specified qdisc kind is unknown").

Each direction of each connection has a queue of (due time, bytes): a chunk read at ``t`` is written at
``t + one_way_ms`` and chunks keep their order, so a stream of writes is delayed as a whole, not serialised
behind each other's delays (what a network link does, bandwidth aside).

    python bench/delay_proxy.py --upstream 127.0.0.1:5432 --one-way-ms 1.0 [--listen-port 0]

prints the port it listens on, on one line, then serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time

__all__ = ["serve"]

_CHUNK = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk written ``delay_s`` after it was read; closes ``writer`` at EOF."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        try:
            while chunk := await reader.read(_CHUNK):
                queue.put_nowait((time.monotonic() + delay_s, chunk))
        finally:
            queue.put_nowait((time.monotonic() + delay_s, b""))

    async def write() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    reading = asyncio.ensure_future(read())
    try:
        await write()
    except (ConnectionError, OSError):
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await reading


async def serve(upstream_host: str, upstream_port: int, one_way_ms: float, listen_port: int = 0) -> asyncio.Server:
    """A started proxy on 127.0.0.1 (``listen_port`` 0: any free port) to ``upstream_host:upstream_port``."""
    delay_s = one_way_ms / 1000.0

    async def connected(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pump(client_reader, server_writer, delay_s),
                             _pump(server_reader, client_writer, delay_s))

    return await asyncio.start_server(connected, "127.0.0.1", listen_port)


async def _main(args: argparse.Namespace) -> None:
    host, _, port = args.upstream.rpartition(":")
    server = await serve(host, int(port), args.one_way_ms, args.listen_port)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True, help="host:port to forward to")
    parser.add_argument("--one-way-ms", type=float, required=True, help="delay each way, milliseconds")
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(_main(parse_args(sys.argv[1:])))
