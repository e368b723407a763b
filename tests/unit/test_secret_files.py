"""Issue 10 point 10: files holding secrets are created 0600 — the demo's client secrets among them."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.demo import _demo_clients
from gateway.secret_files import write_secret_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_client_secrets_are_written_readable_by_the_owner_only(tmp_path: Path) -> None:
    _clients, secrets = _demo_clients(tmp_path, {"aler": ("messages:submit",), "fwa": ("messages:read",)})
    written = tmp_path / "demo-clients.json"
    assert secrets and written.read_text(encoding="utf-8")
    assert mode(written) == 0o600


def test_an_existing_world_readable_file_is_narrowed_before_it_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)
    write_secret_file(path, "new")
    assert mode(path) == 0o600
    assert path.read_text(encoding="utf-8") == "new"
