"""The ``gateway`` command as an operator runs it: a worker that stops cleanly on SIGTERM, the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def test_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_BUS": "embedded"}
    worker = subprocess.Popen([*GATEWAY, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert worker.stderr is not None
        for line in iter(worker.stderr.readline, ""):
            if "worker-started" in line:
                break
        else:
            raise AssertionError("the worker exited before it started")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=45) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if worker.stderr is not None:
            worker.stderr.close()


def test_demo_once_exits_zero_with_a_summary(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "COLUMNS": "160"}
    done = subprocess.run([*GATEWAY, "demo", "--once", "--port", "0"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "forwarded to FWA" in done.stdout
    assert "denied: not-authorised" in done.stdout
    assert "intact" in done.stdout
    for flow in ("F1-outcome", "F2", "F3", "F4", "F5", "F10-comune"):  # all four partners, both ways
        assert flow in done.stdout
    assert (tmp_path / "demo" / "gateway.sqlite3").exists()
