"""Issue 10 point 7 over a real socket: the API served by uvicorn with :func:`gateway.api.serving.server_config`
announces no ``Server`` banner, and uvicorn rewrites no forwarded header (the gateway's setting decides)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx

from gateway.api import create_app
from gateway.api.serving import server_config
from gateway.bootstrap import build
from gateway.settings import GatewaySettings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_served_api_has_no_server_banner_and_uvicorn_keeps_forwarded_headers_to_itself(
    tmp_path: Path
) -> None:
    import uvicorn

    gateway = build(GatewaySettings(data_dir=tmp_path), clients=())
    await gateway.start(workers=False)
    port = free_port()
    config = server_config(create_app(gateway, manage_lifecycle=False), "127.0.0.1", port, log_config=None,
                           access_log=False)
    assert config.proxy_headers is False
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            health = await http.get("/health")
            refused = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                      auth=("nobody", "x"), headers={"x-forwarded-for": "203.0.113.9"})
        assert health.status_code == 200
        for answer in (health, refused):
            assert "server" not in answer.headers
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert refused.status_code == 401  # judged as the loopback it is, not as the forwarded address
    finally:
        server.should_exit = True
        await serving
        await gateway.stop()
