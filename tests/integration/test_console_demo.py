"""``gateway demo`` serves the privacy console too and prints its address and a demo officer's sign-in, with
which a person can sign in (password and TOTP) while the demo runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp

from tests.console_helpers import csrf


def test_the_demo_prints_a_console_sign_in_that_works(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "COLUMNS": "400"}
    with subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo", "--port", "0"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as demo:
        try:
            _sign_in_as_printed(demo)
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()


def _sign_in_as_printed(demo: subprocess.Popen[str]) -> None:
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    while not any("Privacy console" in line for line in lines):
        assert time.monotonic() < deadline and demo.poll() is None, "".join(lines)[-3000:]
        lines.append(demo.stdout.readline())
    printed = " ".join(line for line in lines if "Privacy console" in line)
    found = re.search(r"(http://127\.0\.0\.1:\d+)/console/ — sign in as (\S+), password (\S+), TOTP secret (\w+)",
                      printed)
    assert found, printed
    url, username, password, secret = found.groups()
    with httpx.Client(base_url=url) as http:
        page = http.get("/console/login")
        signed = http.post("/console/login", data={"username": username, "password": password,
                                                   "code": pyotp.TOTP(secret).now(), "csrf_token": csrf(page.text)})
        assert signed.status_code == 303, signed.text[-2000:]
        home = http.get("/console/")
        assert home.status_code == 200 and "Cruscotto" in home.text and "Ufficio protezione dati" in home.text
