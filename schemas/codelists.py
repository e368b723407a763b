"""Versioned code lists with Italian labels canonical, loaded from ``schemas/codelists/*.yaml``.

Models use :func:`coded` to declare a field whose value must be a code from a list; aliases (spellings seen
in partner systems, e.g. "Molise Calvaire") are accepted by :meth:`CodeList.resolve` in adapters and never
produced on output.

A code may carry HL7 sensitivity labels (``labels: [PSY]``, from :data:`SENSITIVE_LABELS`): the element
holding that code is sensitive on its own, whatever the rest of the message is (privacy.md rule 7), and the
minimiser redacts it unless the decision permits the label. Each coded field carries a :class:`CodedBy`
marker, so :func:`coded_fields` finds, from a payload model alone, which fields hold codes of which list.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, WithJsonSchema

__all__ = [
    "ITEM",
    "SENSITIVE_LABELS",
    "ArrearsKind",
    "ArrearsStage",
    "CodeList",
    "CodedBy",
    "CodedField",
    "ContractType",
    "HouseholdType",
    "IseeBand",
    "Quartiere",
    "RentBand",
    "RequestType",
    "SensitivityLabel",
    "coded_fields",
    "load_codelist",
]

SensitivityLabel = Literal["S0", "S1", "S2", "S3", "S4", "SDV", "PSY", "MH", "HIV", "ETH", "LOC", "R", "V", "N"]
"""Sensitivity classes of domain.md (S0-S4) and HL7 confidentiality / sensitivity codes of privacy.md; what an
envelope's ``sensitivity`` holds (:class:`schemas.envelope.Envelope`)."""

SENSITIVE_LABELS = frozenset({"SDV", "PSY", "MH", "HIV", "ETH", "LIVARG"})
"""HL7 v3 sensitivity codes of privacy.md rule 7 (violence, psychiatry, mental health, HIV, substance abuse,
living arrangement): the only labels a code may carry."""


@dataclass(frozen=True)
class CodeList:
    """One code list: name, version, codes with Italian labels and accepted aliases."""

    name: str
    version: str
    labels_it: dict[str, str]
    aliases: dict[str, str] = field(default_factory=dict)
    """Normalised alias (casefolded, spaces collapsed) -> code."""
    labels: dict[str, frozenset[str]] = field(default_factory=dict)
    """Code -> its sensitivity labels, for the codes that have any."""

    def labels_of(self, code: str) -> frozenset[str]:
        """The sensitivity labels of ``code`` (none for an ordinary or unknown code)."""
        return self.labels.get(code, frozenset())

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
    sensitive: dict[str, frozenset[str]] = {}
    for entry in raw["codes"]:
        code = str(entry["code"])
        for alias in [code, entry["label_it"], *entry.get("aliases", [])]:
            aliases[_normalise(str(alias))] = code
        if entry.get("labels"):
            sensitive[code] = frozenset(str(label) for label in entry["labels"])
            unknown = sorted(sensitive[code] - SENSITIVE_LABELS)
            if unknown:
                raise ValueError(f"code list {raw['list']}: code {code} has labels {unknown} that are not "
                                 f"sensitivity labels ({', '.join(sorted(SENSITIVE_LABELS))})")
    return CodeList(name=str(raw["list"]), version=str(raw["version"]), labels_it=labels, aliases=aliases,
                    labels=sensitive)


@dataclass(frozen=True)
class CodedBy:
    """Marker in a coded field's metadata: the code list (file name, ``care_needs``) its values come from."""

    codelist: str


ITEM = "[]"
"""A step of :attr:`CodedField.path` that stands for every item of a list."""


@dataclass(frozen=True)
class CodedField:
    """Where a payload model holds codes of one list: ``("care_needs", ITEM)``, ``("logistics", "entry")``."""

    path: tuple[str, ...]
    codelist: str
    required: bool
    """Its holder cannot go without it: the payload, or the list item that holds it (every field on the way
    from there is required)."""


def coded_fields(model: type[BaseModel]) -> tuple[CodedField, ...]:
    """Every coded field of ``model`` and of the models nested in it, found from the :class:`CodedBy` markers
    of the field types (plain, optional, tuples of codes, nested models, tuples of nested models)."""
    found: list[CodedField] = []
    for name, info in model.model_fields.items():
        _collect(found, (name,), info.annotation, tuple(info.metadata), info.is_required())
    return tuple(found)


def _collect(found: list[CodedField], path: tuple[str, ...], annotation: Any, metadata: tuple[Any, ...],
             required: bool) -> None:
    marker = next((m for m in metadata if isinstance(m, CodedBy)), None)
    if marker is not None:
        found.append(CodedField(path, marker.codelist, required))
        return
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        _collect(found, path, args[0], tuple(args[1:]), required)
    elif origin in (Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                _collect(found, path, arg, (), required)
    elif origin in (tuple, list) and args:
        _collect(found, (*path, ITEM), args[0], (), True)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            _collect(found, (*path, name), info.annotation, tuple(info.metadata), required and info.is_required())


def _coded(name: str) -> Any:
    """Annotated string type restricted to the codes of list ``name``; its JSON Schema is an enum."""
    codes = load_codelist(name)

    def check(value: str) -> str:
        if value not in codes:
            allowed = ", ".join(sorted(codes.labels_it))
            raise ValueError(f"not a code of list {codes.name} v{codes.version}; allowed: {allowed}")
        return value

    schema = {"type": "string", "enum": sorted(codes.labels_it), "description": f"code list {codes.name}"}
    return Annotated[str, AfterValidator(check), WithJsonSchema(schema), CodedBy(name)]


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
