"""The ``gateway`` command imports what a command needs when it runs (issue 8, start-up): ``gateway --help`` and
``gateway contracts check`` of one file load neither the web framework, nor the database toolkit, nor the Kafka
client. Checked on the modules a fresh interpreter imports (``-X importtime``), not on wall time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "aiokafka",
         "gateway.api", "gateway.store", "gateway.bootstrap")
EXAMPLE = ROOT / "contracts" / "examples" / "aler" / "valid" / "segnalazione-morosita.json"


def imported_modules(*args: str) -> tuple[int, set[str]]:
    run_cli = "from gateway.cli import app; app(prog_name='gateway')"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", run_cli, *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT)
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done.returncode, modules


@pytest.mark.parametrize("args", [("--help",), ("contracts", "check", str(EXAMPLE), "--from", "aler")],
                         ids=["help", "contracts-check"])
def test_light_commands_load_no_web_database_or_broker_library(args: tuple[str, ...]) -> None:
    code, modules = imported_modules(*args)
    assert code == 0
    assert "gateway.cli" in modules
    loaded = sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY[:8])
    assert loaded == [], f"gateway {' '.join(args)} imported {loaded}"
