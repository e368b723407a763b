"""Which codes name a vaccine, and the vaccine group each belongs to (influenza, COVID-19, pneumococcal,
herpes zoster, other: code list ``vaccine_groups``), from the versioned code lists ``vaccine_codes`` and
``aic_vaccines``.

Four code systems name a vaccine in ``Immunization.vaccineCode``:

* WHO ATC (:data:`ATC_SYSTEM`): any code under ``J07`` is a vaccine; its group comes from the list, else from
  its ATC prefix (:data:`ATC_GROUP_PREFIXES`), else ``other``.
* AIC, the Italian marketing authorisation code (:data:`AIC_SYSTEM`): a listed pack resolves to its ATC code,
  and through it to a group; an unlisted one names no vaccine the gateway can recognise.
* SNOMED CT (:data:`SNOMED_SYSTEM`): only listed vaccine products (offline, nothing tells a vaccine product
  from any other concept).
* CDC CVX (:data:`CVX_SYSTEM`): every CVX code is a vaccine; listed ones have their group, the rest ``other``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any, Final

import yaml

__all__ = [
    "AIC_SYSTEM",
    "ATC_GROUP_PREFIXES",
    "ATC_SYSTEM",
    "CVX_SYSTEM",
    "SNOMED_SYSTEM",
    "VACCINE_SYSTEMS",
    "aic_atc",
    "vaccine_group",
]

ATC_SYSTEM: Final = "http://www.whocc.no/atc"
AIC_SYSTEM: Final = "https://www.aifa.gov.it/aic"
SNOMED_SYSTEM: Final = "http://snomed.info/sct"
CVX_SYSTEM: Final = "http://hl7.org/fhir/sid/cvx"
VACCINE_SYSTEMS: Final = (ATC_SYSTEM, AIC_SYSTEM, SNOMED_SYSTEM, CVX_SYSTEM)
"""The code systems a vaccine may be named in, in the order the adapter prefers them."""

ATC_GROUP_PREFIXES: Final = (("J07BX03", "covid-19"), ("J07BK02", "zoster"), ("J07BK03", "zoster"),
                             ("J07BB", "influenza"), ("J07AL", "pneumococcal"))
"""ATC prefixes of the vaccine groups, for J07 codes the list does not name (a new influenza subgroup...)."""

_ATC: Final = re.compile(r"J07[A-Z]{0,2}(?:[0-9]{2})?")
_AIC: Final = re.compile(r"[0-9]{9}")
_CVX: Final = re.compile(r"[0-9]{1,3}")


def _entries(name: str) -> list[dict[str, Any]]:
    text = resources.files("schemas").joinpath("codelists", f"{name}.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    return list(raw["codes"])


@cache
def _listed() -> dict[tuple[str, str], str]:
    return {(str(e["system"]), str(e["code"])): str(e["group"]) for e in _entries("vaccine_codes")}


@cache
def _aic() -> dict[str, str]:
    return {str(e["code"]): str(e["atc"]) for e in _entries("aic_vaccines")}


def aic_atc(code: str) -> str | None:
    """The ATC code a listed AIC pack resolves to (code list ``aic_vaccines``), else None."""
    return _aic().get(code)


def vaccine_group(system: str | None, code: str | None) -> str | None:
    """The vaccine group of ``code`` in ``system``; None when the pair names no vaccine the gateway recognises."""
    if not system or not code:
        return None
    listed = _listed().get((system, code))
    if listed is not None:
        return listed
    if system == ATC_SYSTEM and _ATC.fullmatch(code):
        return next((group for prefix, group in ATC_GROUP_PREFIXES if code.startswith(prefix)), "other")
    if system == AIC_SYSTEM and _AIC.fullmatch(code):
        atc = aic_atc(code)
        return vaccine_group(ATC_SYSTEM, atc) if atc else None
    if system == CVX_SYSTEM and _CVX.fullmatch(code):
        return "other"
    return None
