"""The golden examples under contracts/examples stay in step with gateway/golden.py and with the gateway:
valid ones are accepted, invalid ones are refused with exactly the problems their ``.expected.json`` lists.
Examples are JSON messages, and ALER's CSV tenancy exports (``.csv``, sent as ``text/csv``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.contract_kit import check_message
from gateway.golden import content_type, golden_examples
from gateway.policy import load_registry
from gateway.routing import DECODERS

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
GENERATED = golden_examples()
REGISTRY = load_registry()
VALID = sorted(p for p in GENERATED if p.split("/")[1] == "valid")
INVALID = sorted(p for p in GENERATED if p.split("/")[1] == "invalid" and not p.endswith(".expected.json"))


def test_checked_in_examples_match_the_generator() -> None:
    """Run ``write_golden_examples(Path("contracts/examples"))`` when this fails, and review the diff."""
    on_disk = {str(p.relative_to(EXAMPLES)): p.read_bytes() for p in EXAMPLES.rglob("*")
               if p.suffix in (".json", ".csv")}
    assert sorted(on_disk) == sorted(GENERATED)
    assert [path for path, content in GENERATED.items() if on_disk[path] != content] == []


def test_every_partner_has_valid_and_invalid_examples() -> None:
    for partner in DECODERS:
        assert sum(p.startswith(f"{partner}/") for p in VALID) >= 2, partner
        assert sum(p.startswith(f"{partner}/") for p in INVALID) >= 5, partner
    for path in INVALID:
        assert _expected(path) in GENERATED


def _expected(path: str) -> str:
    return path.rsplit(".", 1)[0] + ".expected.json"


@pytest.mark.parametrize("path", VALID)
def test_valid_example_is_accepted(path: str) -> None:
    partner = path.split("/")[0]
    report = check_message(partner, (EXAMPLES / path).read_bytes(), content_type(path), REGISTRY)
    assert report.problems == []
    assert report.valid
    assert report.messages


@pytest.mark.parametrize("path", INVALID)
def test_invalid_example_is_refused_with_exactly_its_expected_problems(path: str) -> None:
    partner = path.split("/")[0]
    expected = json.loads((EXAMPLES / _expected(path)).read_text("utf-8"))
    report = check_message(partner, (EXAMPLES / path).read_bytes(), content_type(path), REGISTRY)
    assert not report.valid
    assert [{"pointer": p["pointer"], "rule": p["rule"]} for p in report.problems] == expected
    assert all(p["message"] for p in report.problems)
