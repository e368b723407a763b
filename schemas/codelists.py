"""Versioned code lists with Italian labels canonical, loaded from ``schemas/codelists/*.yaml``.

Models use :func:`coded` to declare a field whose value must be a code from a list; aliases (spellings seen
in partner systems, e.g. "Molise Calvaire") are accepted by :meth:`CodeList.resolve` in adapters and never
produced on output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import AfterValidator, WithJsonSchema

__all__ = [
    "ArrearsKind",
    "ArrearsStage",
    "CodeList",
    "ContractType",
    "HouseholdType",
    "IseeBand",
    "Quartiere",
    "RentBand",
    "RequestType",
    "load_codelist",
]


@dataclass(frozen=True)
class CodeList:
    """One code list: name, version, codes with Italian labels and accepted aliases."""

    name: str
    version: str
    labels_it: dict[str, str]
    aliases: dict[str, str] = field(default_factory=dict)
    """Normalised alias (casefolded, spaces collapsed) -> code."""

    def __contains__(self, code: object) -> bool:
        return code in self.labels_it

    def resolve(self, value: str) -> str | None:
        """The code for ``value`` given as a code, an Italian label or a known alias; None if unknown."""
        if value in self.labels_it:
            return value
        return self.aliases.get(_normalise(value))


def _normalise(text: str) -> str:
    return " ".join(text.replace(".", ". ").split()).casefold()


@cache
def load_codelist(name: str) -> CodeList:
    """Load ``schemas/codelists/<name>.yaml`` (``name`` with underscores, e.g. ``isee_bands``)."""
    text = resources.files("schemas").joinpath("codelists", f"{name}.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    labels = {str(c["code"]): str(c["label_it"]) for c in raw["codes"]}
    aliases: dict[str, str] = {}
    for entry in raw["codes"]:
        code = str(entry["code"])
        for alias in [code, entry["label_it"], *entry.get("aliases", [])]:
            aliases[_normalise(str(alias))] = code
    return CodeList(name=str(raw["list"]), version=str(raw["version"]), labels_it=labels, aliases=aliases)


def _coded(name: str) -> Any:
    """Annotated string type restricted to the codes of list ``name``; its JSON Schema is an enum."""
    codes = load_codelist(name)

    def check(value: str) -> str:
        if value not in codes:
            allowed = ", ".join(sorted(codes.labels_it))
            raise ValueError(f"not a code of list {codes.name} v{codes.version}; allowed: {allowed}")
        return value

    schema = {"type": "string", "enum": sorted(codes.labels_it), "description": f"code list {codes.name}"}
    return Annotated[str, AfterValidator(check), WithJsonSchema(schema)]


if TYPE_CHECKING:  # static checkers see plain strings; at run time each is a validated enum string
    Quartiere = str
    HouseholdType = str
    IseeBand = str
    RentBand = str
    ArrearsStage = str
    ArrearsKind = str
    RequestType = str
    ContractType = str
else:
    Quartiere = _coded("quartieri")
    HouseholdType = _coded("household_types")
    IseeBand = _coded("isee_bands")
    RentBand = _coded("rent_bands")
    ArrearsStage = _coded("arrears_stages")
    ArrearsKind = _coded("arrears_kinds")
    RequestType = _coded("request_types")
    ContractType = _coded("contract_types")
