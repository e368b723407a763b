"""``gateway audit checkpoint | verify | keys | rotate-key | rebuild-nodes`` and ``gateway retention run`` as an
operator runs them (embedded SQLite store); ``gateway privacy erase-request | erase-approve`` are in
``tests/integration/test_privacy_erase_cli.py``.

The verifier recomputes everything from the database, checks every checkpoint with the database's public keys
or with a witness's own key file (``--keys``), exits 1 and names the first bad index or checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from gateway.audit.checkpoint import VerifierKey
from gateway.audit.record import AuditRecord
from gateway.bootstrap import build
from gateway.cli import app
from gateway.settings import GatewaySettings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The commands configure logging on the runner's temporary streams; put the test process's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    was_configured, config = structlog.is_configured(), structlog.get_config()
    try:
        yield
    finally:
        root.handlers = handlers
        root.setLevel(level)
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))
        if was_configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GATEWAY_BUS", "embedded")
    for name in ("GATEWAY_DATABASE_URL", "GATEWAY_AUDIT_SIGNING_KEY_FILE", "GATEWAY_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def append_records(count: int) -> None:
    async def main() -> None:
        gateway = build(GatewaySettings())
        await gateway.store.migrate()
        async with gateway.store.transaction() as tx:
            await tx.append_audit([
                AuditRecord(event_type="decision", action="deny", occurred_at=datetime.now(UTC), outcome="deny",
                            instance="cli-test")
                for _ in range(count)
            ])
        await gateway.store.close()

    asyncio.run(main())


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", *args], env={"COLUMNS": "400"})
    return result.exit_code, result.output


ON_A_TERMINAL = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "200"}
"""Makes rich treat stderr as an interactive terminal, as when an operator runs the command by hand."""


def test_verify_and_rebuild_draw_a_progress_bar_on_a_terminal_and_none_when_piped(data_dir: Path) -> None:
    append_records(13)
    for command, label in (("verify", "verifying the audit log"), ("rebuild-nodes", "hashing Merkle subtrees")):
        piped = CliRunner().invoke(app, ["audit", command], env={"COLUMNS": "200"})
        assert piped.exit_code == 0, piped.output
        assert label not in piped.output
        shown = CliRunner().invoke(app, ["audit", command], env=ON_A_TERMINAL)
        assert shown.exit_code == 0, shown.output
        assert label in shown.stderr and "13/13" in shown.stderr
        assert label not in shown.stdout
    assert "audit log intact: " in CliRunner().invoke(app, ["audit", "verify"], env=ON_A_TERMINAL).stdout


def test_checkpoint_verify_rotate_and_tamper_from_the_command_line(data_dir: Path) -> None:
    append_records(5)
    code, note = run("checkpoint")
    assert code == 0, note
    assert note.startswith("quartieri-gateway/audit\n5\n") and "\n\n\u2014 quartieri-gateway/audit " in note

    code, out = run("verify")
    assert code == 0, out
    assert "audit log intact: 5 records" in out and "1 of 1 signed checkpoints verified" in out

    code, out = run("keys")
    assert code == 0
    [old_vkey] = out.split()
    old_keys = data_dir / "witness-old.vkeys"
    old_keys.write_text(f"# what a partner's privacy officer keeps\n{old_vkey}\n", encoding="utf-8")
    assert VerifierKey.parse(old_vkey).name == "quartieri-gateway/audit"

    append_records(2)
    code, out = run("rotate-key")  # the old key keeps co-signing: witnesses on it still follow
    assert code == 0, out
    assert out.startswith("new checkpoint key quartieri-gateway/audit+") and "\n7\n" in out
    code, out = run("verify", "--keys", str(old_keys))
    assert code == 0, out

    code, out = run("rotate-key", "--finish")
    assert code == 0 and out.startswith(f"retired {old_vkey}"), out
    code, out = run("verify", "--keys", str(old_keys))  # the latest checkpoint is signed by the new key only
    assert code == 1 and "audit log BROKEN at checkpoint 3:" in out and "no signature from a trusted key" in out

    code, out = run("keys")
    all_keys = data_dir / "witness-all.vkeys"
    all_keys.write_text(out, encoding="utf-8")
    assert len(out.split()) == 2
    code, out = run("verify", "--keys", str(all_keys))
    assert code == 0 and "3 of 3 signed checkpoints verified" in out, out

    with sqlite3.connect(data_dir / "gateway.sqlite3") as db:  # one byte of record 2
        (text,) = db.execute("SELECT record FROM audit_log WHERE idx = 2").fetchone()
        db.execute("UPDATE audit_log SET record = ? WHERE idx = 2", (text.replace('"deny"', '"dent"', 1),))
    code, out = run("verify")
    assert code == 1, out
    assert "audit log BROKEN at index 2: leaf hash does not match the record" in out


def test_rebuild_nodes_fills_in_an_old_log_and_verify_names_a_tampered_node(data_dir: Path) -> None:
    append_records(37)
    with sqlite3.connect(data_dir / "gateway.sqlite3") as db:  # as a log written before the subtrees were stored
        db.execute("DELETE FROM audit_merkle_nodes")
    code, out = run("verify")
    assert code == 0 and "run `gateway audit rebuild-nodes`" in out, out

    code, out = run("rebuild-nodes")  # four of level 3, two of level 4, one of level 5: smaller ones are not stored
    assert (code, out.strip()) == (0, "7 Merkle subtree hashes added for 37 records"), out
    code, out = run("rebuild-nodes")
    assert (code, out.strip()) == (0, "0 Merkle subtree hashes added for 37 records"), out
    code, out = run("verify")
    assert code == 0 and "warning" not in out, out

    with sqlite3.connect(data_dir / "gateway.sqlite3") as db:
        (right,) = db.execute("SELECT hash FROM audit_merkle_nodes WHERE level = 4 AND idx = 1").fetchone()
        db.execute("UPDATE audit_merkle_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 1")
    code, out = run("verify")
    assert code == 1, out
    assert ("audit log BROKEN at Merkle node level 4 index 1: stored Merkle node at level 4, index 1 "
            "(records 16 to 31)") in out

    with sqlite3.connect(data_dir / "gateway.sqlite3") as db:  # a smaller subtree a log written before kept
        db.execute("UPDATE audit_merkle_nodes SET hash = ? WHERE level = 4 AND idx = 1", (right,))
        db.execute("INSERT INTO audit_merkle_nodes (level, idx, hash) VALUES (2, 1, zeroblob(32))")
    code, out = run("verify")
    assert code == 1, out
    assert "audit log BROKEN at Merkle node level 2 index 1: stored Merkle node at level 2, index 1 (records 4 to 7)" \
        in out


def test_verify_refuses_a_malformed_key_file(data_dir: Path) -> None:
    bad = data_dir / "bad.vkeys"
    bad.write_text("not-a-key\n", encoding="utf-8")
    code, out = run("verify", "--keys", str(bad))
    assert code == 2 and "cannot read" in out


def test_verify_of_an_empty_log_says_it_is_empty_not_intact(data_dir: Path) -> None:
    append_records(0)  # a migrated store with no audit record yet
    code, out = run("verify")
    assert code == 0, out
    assert "audit log empty" in out and "intact" not in out
    assert str(data_dir / "gateway.sqlite3") in out


@pytest.mark.parametrize("command", [("verify",), ("keys",)])
def test_read_only_commands_without_a_store_create_nothing_and_name_the_store_they_looked_for(
        data_dir: Path, command: tuple[str, ...]) -> None:
    code, out = run(*command)
    assert code == 2, out
    assert f"no gateway store: the SQLite file {data_dir / 'gateway.sqlite3'} does not exist" in out
    assert list(data_dir.iterdir()) == []  # no database, no signing, pseudonym or token key


def test_verify_without_a_store_points_at_the_demo_store_when_there_is_one(data_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(data_dir / "demo"))
    append_records(3)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(data_dir))
    code, out = run("verify")
    assert code == 2, out
    assert f"GATEWAY_DATA_DIR={(data_dir / 'demo').resolve()} gateway audit verify" in out
    assert not (data_dir / "gateway.sqlite3").exists()


def test_verify_refuses_a_store_whose_schema_was_never_created(data_dir: Path) -> None:
    sqlite3.connect(data_dir / "gateway.sqlite3").close()  # an empty file where the store should be
    code, out = run("verify")
    assert code == 2, out
    assert "holds no gateway schema" in out and "gateway migrate" in out


def test_retention_run_takes_a_fake_now_and_writes_one_audit_record(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["retention", "run", "--now", "2031-01-01T00:00:00"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "purged 0 row(s) as of 2031-01-01T00:00:00+00:00; audit record 0" in result.output
    result = CliRunner().invoke(app, ["retention", "run", "--now", "yesterday"], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    code, out = run("verify")
    assert code == 0 and "audit log intact: 1 records" in out, out


def test_retention_and_statistics_show_that_they_are_working_on_a_terminal(data_dir: Path) -> None:
    retention = CliRunner().invoke(app, ["retention", "run", "--now", "2031-01-01T00:00:00"], env=ON_A_TERMINAL)
    assert retention.exit_code == 0, retention.output
    assert "purging expired payloads" in retention.stderr and "purged 0 row(s)" in retention.stdout
    published = CliRunner().invoke(app, ["statistics", "publish", "--period", "2026-10", "--flow", "F13"],
                                   env=ON_A_TERMINAL)
    assert published.exit_code == 0, published.output
    assert "publishing 2026-10" in published.stderr and "F13 2026-10 ->" in published.stdout
