"""``gateway officers add``: a local console account with an argon2id password hash and a TOTP secret printed
once; a taken username, an unknown role or a short password are refused without a trace in the store."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

GATEWAY = [sys.executable, "-m", "gateway.cli"]
PASSWORD = "una-password-lunga"


def _add(tmp_path: Path, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "var")}
    env = {k: v for k, v in env.items() if k != "GATEWAY_DATABASE_URL"}
    return subprocess.run([*GATEWAY, "officers", "add", *args], input=f"{password}\n{password}\n", env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def _stored(tmp_path: Path) -> list[tuple[str, str, str]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'gateway.sqlite3'}")
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT username, roles, password_hash FROM console_officers"))
            return [tuple(r) for r in rows]  # type: ignore[misc]
    finally:
        await engine.dispose()


def test_officers_add_prints_the_totp_secret_once_and_keeps_only_a_hash(tmp_path: Path) -> None:
    done = _add(tmp_path, "dpo.fwa", "--organisation", "fwa", "--display-name", "DPO FWA",
                "--role", "privacy-officer", "--role", "erasure-officer")
    assert done.returncode == 0, done.stderr
    secret = re.search(r"totp_secret: ([A-Z2-7]+)", done.stdout)
    assert secret and f"secret={secret.group(1)}" in done.stdout and "otpauth://totp/" in done.stdout
    [(username, roles, password_hash)] = asyncio.run(_stored(tmp_path))
    assert (username, roles) == ("dpo.fwa", "erasure-officer privacy-officer")
    assert password_hash.startswith("$argon2id$") and PASSWORD not in password_hash

    again = _add(tmp_path, "dpo.fwa", "--organisation", "fwa", "--display-name", "x", "--role", "privacy-officer")
    assert again.returncode == 1 and "exists already" in again.stderr
    wrong = _add(tmp_path, "dpo.x", "--organisation", "fwa", "--display-name", "x", "--role", "admin")
    assert wrong.returncode == 2 and "unknown role" in wrong.stderr
    short = _add(tmp_path, "dpo.y", "--organisation", "fwa", "--display-name", "x", "--role", "privacy-officer",
                 password="short")
    assert short.returncode == 2 and "12 characters" in short.stderr
    assert len(asyncio.run(_stored(tmp_path))) == 1
