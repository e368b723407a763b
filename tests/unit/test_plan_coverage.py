"""Every test-plan identifier of privacy.md (C-01..C-23, M-01..M-03, W-01..W-08, T-01..T-13, D-01..D-08) has at
least one test named after it, so a rule cannot lose its test without this failing.

The plan's lists, in order: C-20 and C-21 are the two property tests (determinism; deny provisions never
widen), C-22 guardian without evidence, C-23 retired notice version; W-08 is the recorded acknowledgement of
an art. 19 notice. W-02 is a measurement, not a test: it is the benchmark ``bench/withdrawal_latency.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAN = {"C": 23, "M": 3, "W": 8, "T": 13, "D": 8}
MEASURED_NOT_TESTED = {"W02": ROOT / "bench" / "withdrawal_latency.py"}


def named_ids() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for match in re.finditer(r"def test_((?:[CMWTD]\d\d_)+)", path.read_text(encoding="utf-8")):
            found.update(part for part in match.group(1).split("_") if part)
    return found


def test_every_plan_identifier_has_a_test_named_after_it() -> None:
    wanted = {f"{letter}{n:02d}" for letter, count in PLAN.items() for n in range(1, count + 1)}
    missing = sorted(wanted - named_ids() - set(MEASURED_NOT_TESTED))
    assert missing == []


def test_what_is_measured_instead_of_tested_has_its_benchmark() -> None:
    for benchmark in MEASURED_NOT_TESTED.values():
        assert benchmark.is_file(), benchmark
