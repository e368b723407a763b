"""Partners are loaded by their descriptors, lazily, and the core never imports a partner's adapter (issue 12).

The import contract ``core-names-no-partner`` of ``pyproject.toml`` (checked by ``lint-imports``) forbids the core
from importing the built-in adapter packages; these tests keep that contract complete as partners are added, and
check that asking for one partner imports that partner's adapter package and no other."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gateway.partners import BUILT_IN, built_in, descriptor

ROOT = Path(__file__).resolve().parents[2]


def _contract(contract_id: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    [contract] = [c for c in contracts if c["id"] == contract_id]
    return dict(contract)


def test_the_import_contract_forbids_the_core_every_built_in_adapter_package() -> None:
    contract = _contract("core-names-no-partner")
    assert contract["source_modules"] == ["gateway"]
    assert sorted(contract["forbidden_modules"]) == sorted(BUILT_IN.values())  # type: ignore[type-var]


def test_a_partner_is_found_by_its_organisation_and_the_built_in_list_is_every_descriptor() -> None:
    assert [p.organisation for p in built_in()] == list(BUILT_IN)
    for organisation in BUILT_IN:
        found = descriptor(organisation)
        assert found is not None and found.organisation == organisation
    assert descriptor("pis") is None  # a recipient whose deliveries the Comune's adapter writes


def _adapters_loaded_by(code: str) -> set[str]:
    wanted = "m.startswith('adapters.') or m == 'fhir.resources'"
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m for m in sys.modules if {wanted})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True,
                          cwd=ROOT)
    return set(done.stdout.split())


@pytest.mark.parametrize("organisation", sorted(BUILT_IN))
def test_asking_for_one_partner_imports_its_adapter_package_and_no_other(organisation: str) -> None:
    loaded = _adapters_loaded_by(f"from gateway.routing import decoder_for\nassert decoder_for({organisation!r})")
    packages = {m.split(".")[0] + "." + m.split(".")[1] for m in loaded if m.startswith("adapters.")}
    others = set(BUILT_IN.values()) - {BUILT_IN[organisation]}
    assert BUILT_IN[organisation] in packages
    assert not packages & others, f"decoder_for({organisation!r}) also imported {sorted(packages & others)}"
    assert ("fhir.resources" in loaded) is (organisation == "asst")  # FHIR models only for the FHIR partner


def test_importing_the_core_tables_imports_no_adapter_until_they_are_read() -> None:
    loaded = _adapters_loaded_by("import gateway.routing, gateway.partners, gateway.contracts.kit, "
                                 "gateway.pipeline.backfill")
    assert not {m for m in loaded if m.split(".")[1] in {b.split(".")[1] for b in BUILT_IN.values()}}, loaded
