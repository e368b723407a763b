"""Bulk backfill (issue 9 point 14) on both pairs of backends (embedded bus + SQLite, Kafka + PostgreSQL).

A backfill interrupted midway — and, worse, one whose last batch was committed but not checkpointed (a crash
between the two) — is resumed and decides every record exactly once, counted as decision records per message
id in the audit log; the summary gives the outcomes; no codice fiscale reaches the summary or the audit log.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.pipeline.backfill import BackfillError, BackfillSummary, backfill, checkpoint_path
from gateway.simulators.bulk import aler_tenancy_export, asst_bulk_export
from tests.e2e.test_f1_microcredit_referral import audit_records
from tests.integration.test_dlq import cli


class Interrupted(Exception):
    """Stands for Ctrl-C or a crash after a committed batch."""


def interrupt_after(records: int) -> Any:
    def on_progress(summary: BackfillSummary) -> None:
        if summary.done >= records:
            raise Interrupted

    return on_progress


def decisions_per_message(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(m for r in records if r["event_type"] == "decision" for m in r["message_ids"])


async def test_an_interrupted_aler_backfill_resumes_and_decides_every_record_once(gateway: Gateway,
                                                                                   tmp_path: Path) -> None:
    tenants = list(generate_tenants("S", seed=91, limit=30))
    export = tmp_path / "tenancies.csv"
    rows = aler_tenancy_export(tenants).decode().split("\r\n")
    bad = rows[5].replace(tenants[4].cf, "RSSMRA85T10A562X")  # a codice fiscale with a wrong check character
    export.write_text("\r\n".join([*rows[:5], bad, *rows[6:]]), encoding="utf-8")

    with pytest.raises(Interrupted):
        await backfill(gateway.intake, "aler", [export], batch_size=7, on_progress=interrupt_after(14))
    checkpoint = checkpoint_path([export])
    saved = json.loads(checkpoint.read_text())
    assert saved["done"] == 14
    # a crash after the second batch's commit but before its checkpoint: the checkpoint still says 7
    checkpoint.write_text(json.dumps({**saved, "done": 7}))

    summary = await backfill(gateway.intake, "aler", [export], batch_size=7)
    assert (summary.total, summary.skipped, summary.done) == (30, 7, 23)
    assert summary.outcomes["already-decided"] == 7
    assert summary.outcomes["invalid"] == 0  # the bad row was in the first batch, before the crash
    assert sum(summary.outcomes.values()) == 23
    assert not checkpoint.exists()

    records = await audit_records(gateway)
    decided = decisions_per_message(records)
    expected = {f"aler-csv:{t.contract_id}:20261101T060000Z" for i, t in enumerate(tenants) if i != 4}
    assert set(decided) == expected
    assert set(decided.values()) == {1}
    text = orjson.dumps(records).decode() + json.dumps(summary.as_dict())
    assert not any(t.cf in text for t in tenants)

    again = await backfill(gateway.intake, "aler", [export], batch_size=50)
    assert again.outcomes == Counter({"already-decided": 29, "invalid": 1})
    assert [(i.unit, i.reason) for i in again.invalid] == [(4, "contract-violation")]
    assert decisions_per_message(await audit_records(gateway)) == decided


async def test_an_asst_bulk_export_is_decided_once_per_resource_with_its_patient(gateway: Gateway,
                                                                                   tmp_path: Path) -> None:
    tenants = list(generate_tenants("S", seed=92, limit=6))
    folder = tmp_path / "export"
    folder.mkdir()
    export = asst_bulk_export(tenants, 16, immunizations=4)
    for name, content in export.items():
        (folder / name).write_bytes(content)
    files = sorted(folder.glob("*.ndjson"))  # Encounter, Immunization, Patient: the Patients come last

    with pytest.raises(Interrupted):
        await backfill(gateway.intake, "asst", files, batch_size=8, on_progress=interrupt_after(8))
    summary = await backfill(gateway.intake, "asst", files, batch_size=8)
    assert (summary.total, summary.skipped, summary.done) == (20, 8, 12)
    assert summary.outcomes["invalid"] == 0
    decided = decisions_per_message(await audit_records(gateway))
    assert set(decided) == ({f"Encounter:enc-{n:08d}:1" for n in range(16)}
                            | {f"Immunization:imm-{n:08d}:1" for n in range(4)})
    assert set(decided.values()) == {1}
    assert not any(t.cf in json.dumps(summary.as_dict()) for t in tenants)


async def test_a_changed_input_is_not_resumed_and_bad_inputs_are_explained(gateway: Gateway, tmp_path: Path) -> None:
    export = tmp_path / "tenancies.csv"
    export.write_bytes(aler_tenancy_export(generate_tenants("S", seed=93, limit=10)))
    with pytest.raises(Interrupted):
        await backfill(gateway.intake, "aler", [export], batch_size=3, on_progress=interrupt_after(3))
    export.write_bytes(export.read_bytes() + b"\r\n")
    with pytest.raises(BackfillError, match="changed since the checkpoint"):
        await backfill(gateway.intake, "aler", [export])
    (tmp_path / "bad.ndjson").write_text("{not json\n")
    with pytest.raises(BackfillError, match="line 1 is not JSON"):
        await backfill(gateway.intake, "asst", [tmp_path / "bad.ndjson"])
    with pytest.raises(BackfillError, match="is not a file"):
        await backfill(gateway.intake, "aler", [tmp_path / "missing.csv"])
    with pytest.raises(BackfillError, match="exactly one"):
        await backfill(gateway.intake, "aler", [export, export])
    # The sources offered are the descriptors that declare a bulk export reader (FWA has none).
    with pytest.raises(BackfillError, match=r"no backfill from 'fwa': use aler \(CSV export\) or asst \(FHIR Bulk "
                                            r"Data NDJSON\)$"):
        await backfill(gateway.intake, "fwa", [export])


async def test_the_backfill_command_prints_a_summary_by_outcome_and_resumes_nothing_twice(
        gateway: Gateway, tmp_path: Path) -> None:
    tenants = list(generate_tenants("S", seed=94, limit=12))
    export = tmp_path / "tenancies.csv"
    export.write_bytes(aler_tenancy_export(tenants))

    first = await asyncio.to_thread(cli, gateway, "backfill", "--from", "aler", str(export), "--batch-size", "5")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("12 of 12 records in ")
    assert "  denied:purpose-missing: 12" in first.stdout
    again = await asyncio.to_thread(cli, gateway, "backfill", "--from", "aler", str(export), "--json")
    assert json.loads(again.stdout)["outcomes"] == {"already-decided": 12}
    assert not any(t.cf in first.stdout + first.stderr + again.stdout for t in tenants)
    assert set(decisions_per_message(await audit_records(gateway)).values()) == {1}
    wrong = await asyncio.to_thread(cli, gateway, "backfill", "--from", "comune", str(export))
    assert wrong.returncode == 2 and "no backfill from 'comune': use aler" in wrong.stderr, wrong.stderr
