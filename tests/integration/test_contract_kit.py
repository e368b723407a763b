"""The contract kit: ``gateway contracts check`` and the dry-run endpoint tell an integrator what would
happen to a message, and nothing is stored, forwarded or audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
from sqlalchemy import func, select

from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.simulators import aler_arrears_message
from gateway.store.tables import messages, outbox, subjects
from tests.conftest import bearer

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def message(message_id: str = "m-dry") -> dict[str, object]:
    return aler_arrears_message(next(generate_tenants("S", seed=5, limit=1)), message_id)


def test_check_explains_a_valid_message_and_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(orjson.dumps(message()))
    done = subprocess.run([*GATEWAY, "contracts", "check", str(path), "--from", "aler", "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [fwa] = report["messages"][0]["recipients"]
    assert (fwa["recipient"], fwa["flow"], fwa["consent_required"]) == ("fwa", "F1", True)
    assert "isee_band" in fwa["crossing"] and "isee_value_cents" in fwa["dropped"]
    assert "tenancy.contract_id" in fwa["dropped"]


def test_check_names_each_problem_by_pointer_and_rule_and_exits_one(tmp_path: Path) -> None:
    bad = message()
    bad["nome"] = "x"
    bad["morosita"] = {**bad["morosita"], "importo_euro": "abc"}  # type: ignore[dict-item]
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps(bad))
    done = subprocess.run([*GATEWAY, "contracts", "check", str(path), "--from", "aler"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "/morosita/importo_euro" in done.stdout and "[decimal_parsing]" in done.stdout
    assert "/nome" in done.stdout and "[extra_forbidden]" in done.stdout


async def count(gateway: Gateway) -> tuple[int, ...]:
    async with gateway.store.transaction() as tx:
        totals = [(await tx.conn.execute(select(func.count()).select_from(t))).scalar_one()
                  for t in (messages, outbox, subjects)]
        return (*totals, (await tx.audit_head()).size)


async def test_dry_run_previews_without_storing_forwarding_or_auditing(gateway: Gateway,
                                                                       http: httpx.AsyncClient) -> None:
    aler = await bearer(http, "aler-test")
    before = await count(gateway)
    response = await http.post("/v1/partners/aler/messages/dry-run", content=orjson.dumps(message()),
                               headers={**aler, "content-type": "application/json"})
    assert response.status_code == 200
    [fwa] = response.json()["messages"][0]["recipients"]
    assert fwa["outcome"] == "would-forward-if-permitted" and fwa["consent_required"] is True
    assert not {"consent_ref", "consent_id", "consent"} & set(fwa)  # never whether a consent exists
    assert await count(gateway) == before

    bad = await http.post("/v1/partners/aler/messages/dry-run", content=b"{", headers={
        **aler, "content-type": "application/json"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "aler"
ON_A_TERMINAL = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"}
"""Makes rich treat stderr as an interactive terminal, as when an operator runs the command by hand."""


def test_check_of_a_folder_counts_valid_and_refused_files_and_exits_one_if_any_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(3):
        (folder / f"m{i}.json").write_bytes(orjson.dumps(message(f"m-{i}")))
    (folder / "bad.json").write_bytes(orjson.dumps({**message("m-bad"), "nome": "Mario"}))
    done = subprocess.run([*GATEWAY, "contracts", "check", str(folder), "--from", "aler"], capture_output=True,
                          text=True, check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1, done.stderr
    assert f"refused {folder / 'bad.json'}: 1 problem(s)" in done.stdout
    assert "/nome  [extra_forbidden]" in done.stdout
    assert done.stdout.rstrip().endswith("checked 4 files: 3 valid, 1 refused")
    assert done.stderr == ""  # piped: no progress bar

    valid = subprocess.run([*GATEWAY, "contracts", "check", str(EXAMPLES / "valid"), "--from", "aler", "--json"],
                           capture_output=True, text=True, check=False, env={**os.environ, **ON_A_TERMINAL})
    assert valid.returncode == 0, valid.stdout[-2000:]
    reports = json.loads(valid.stdout)  # the progress bar went to stderr, the report stays parseable
    assert reports and all(r["valid"] for r in reports)
    assert f"checking {len(reports)} files from aler" in valid.stderr
    assert f"{len(reports)}/{len(reports)}" in valid.stderr


def test_check_of_a_missing_file_says_so_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run([*GATEWAY, "contracts", "check", str(tmp_path / "nowhere.json"), "--from", "aler"],
                          capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
