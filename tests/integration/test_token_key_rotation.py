"""Issue 10 point 14 (second half): the token-signing key is rotated without downtime. ``gateway tokens
rotate-key`` writes a new signing key; a running gateway signs with it at once, keeps the old key in its JWKS
and keeps accepting the old key's tokens until they have expired; a later rotation drops a key retired longer
ago than the token lifetime."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from datetime import UTC, datetime, timedelta

import httpx

from gateway.auth.keys import read_token_keys, rotated, token_keys_text
from gateway.bootstrap import Gateway
from tests.conftest import bearer

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def kid_of(headers: dict[str, str]) -> str:
    segment = headers["Authorization"].removeprefix("Bearer ").split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["kid"])


async def rotate(gateway: Gateway) -> str:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(gateway.settings.data_dir)}
    process = await asyncio.create_subprocess_exec(*GATEWAY, "tokens", "rotate-key", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_14_a_rotated_key_signs_at_once_and_the_old_one_verifies_until_its_tokens_expire(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    before = await bearer(http, "aler-test")
    old_kid = kid_of(before)
    assert [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]] == [old_kid]

    await rotate(gateway)
    after = await bearer(http, "aler-test")
    new_kid = kid_of(after)
    assert new_kid != old_kid
    assert [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]] == [new_kid, old_kid]
    for token in (before, after):  # the old key's token is still good, and so is the new one
        assert (await http.get("/v1/partners/aler/inbox", headers=token)).status_code == 200
    assert gateway.token_key_file is not None and oct(gateway.token_key_file.stat().st_mode)[-3:] == "600"

    # once the old key's tokens have all expired, the next rotation drops it
    path = gateway.token_key_file
    later = datetime.now(UTC) + timedelta(seconds=gateway.settings.token_ttl_seconds + 120)
    keys = rotated(read_token_keys(path.read_text(encoding="utf-8")), later, gateway.settings.token_ttl_seconds)
    path.write_text(token_keys_text(keys), encoding="utf-8")
    kids = [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]
    assert kids == [keys.signing.kid, new_kid]
    refused = await http.get("/v1/partners/aler/inbox", headers=before)
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
    assert (await http.get("/v1/partners/aler/inbox", headers=after)).status_code == 200
