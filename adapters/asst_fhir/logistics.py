"""Visit logistics of a care request (flow F4) in FHIR R4: what the community manager knows about reaching
the person's home, coded, never in ``patientInstruction`` or a note.

* ``ServiceRequest.orderDetail``: one CodeableConcept per code — how a visitor gets in
  (``HOME_ENTRY_SYSTEM``), when the visit suits the person (``VISIT_TIME_WINDOW_SYSTEM``), the interpreter's
  language (``LANGUAGE_SYSTEM``, BCP 47) and each access note (``HOME_ACCESS_NOTE_SYSTEM``), with the Italian
  label as display;
* extensions on the ServiceRequest: the floor (``VISIT_FLOOR_EXTENSION``, valueInteger), a working lift
  (``VISIT_LIFT_EXTENSION``) and whether the porter can accompany (``PORTER_ACCOMPANIES_EXTENSION``), both
  valueBoolean.

Reading it back, an orderDetail in any other system, or with text only, is a contract problem: free text never
enters a payload. Extensions with other URLs are left alone.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from adapters.asst_fhir.systems import (
    HOME_ACCESS_NOTE_SYSTEM,
    HOME_ENTRY_SYSTEM,
    LANGUAGE_SYSTEM,
    PORTER_ACCOMPANIES_EXTENSION,
    VISIT_FLOOR_EXTENSION,
    VISIT_LIFT_EXTENSION,
    VISIT_TIME_WINDOW_SYSTEM,
)
from schemas.codelists import load_codelist
from schemas.health import VisitLogistics

__all__ = ["logistics_from_fhir", "logistics_to_fhir"]

_SINGLE_CODES: Final = {
    "entry": (HOME_ENTRY_SYSTEM, "home_entry_methods"),
    "time_window": (VISIT_TIME_WINDOW_SYSTEM, "visit_time_windows"),
    "interpreter_language": (LANGUAGE_SYSTEM, "interpreter_languages"),
}
_EXTENSIONS: Final = {
    "floor": (VISIT_FLOOR_EXTENSION, "valueInteger"),
    "lift": (VISIT_LIFT_EXTENSION, "valueBoolean"),
    "porter_can_accompany": (PORTER_ACCOMPANIES_EXTENSION, "valueBoolean"),
}


class Problems(Protocol):
    def add(self, pointer: str, rule: str, message: str) -> None: ...


def _concept(system: str, code: str, codelist: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": load_codelist(codelist).labels_it[code]}]}


def logistics_to_fhir(logistics: VisitLogistics | None) -> dict[str, Any]:
    """The ``orderDetail`` and ``extension`` elements of a ServiceRequest for ``logistics`` (none for None)."""
    if logistics is None:
        return {}
    details = [_concept(system, getattr(logistics, field), codelist)
               for field, (system, codelist) in _SINGLE_CODES.items() if getattr(logistics, field) is not None]
    details += [_concept(HOME_ACCESS_NOTE_SYSTEM, note, "home_access_notes") for note in logistics.access_notes]
    extensions = [{"url": url, kind: getattr(logistics, field)}
                  for field, (url, kind) in _EXTENSIONS.items() if getattr(logistics, field) is not None]
    return {**({"orderDetail": details} if details else {}), **({"extension": extensions} if extensions else {})}


def _detail(concept: Any, pointer: str, found: dict[str, Any], problems: Problems) -> None:
    codings = list(concept.coding or [])
    if not codings:
        problems.add(pointer, "coded-only", "code each order detail; free text is not accepted")
        return
    for j, coding in enumerate(codings):
        where = f"{pointer}/coding/{j}"
        if coding.system == HOME_ACCESS_NOTE_SYSTEM:
            field, codelist = "access_notes", "home_access_notes"
        else:
            match = next(((f, c) for f, (s, c) in _SINGLE_CODES.items() if s == coding.system), None)
            if match is None:
                problems.add(f"{where}/system", "binding", "code order details in the gateway's visit logistics "
                                                           f"systems ({HOME_ENTRY_SYSTEM}, ...)")
                continue
            field, codelist = match
        codes = load_codelist(codelist)
        if coding.code not in codes:
            problems.add(f"{where}/code", "binding", f"must be one of: {', '.join(codes.labels_it)}")
        elif field == "access_notes":
            found.setdefault("access_notes", []).append(str(coding.code))
        elif found.setdefault(field, str(coding.code)) != coding.code:
            problems.add(where, "cardinality", f"give at most one code in system {coding.system}")


def logistics_from_fhir(resource: Any, pointer: str, problems: Problems) -> dict[str, Any] | None:
    """The canonical ``logistics`` of a ServiceRequest, or None when it gives none; problems for free text."""
    found: dict[str, Any] = {}
    for k, concept in enumerate(resource.orderDetail or []):
        _detail(concept, f"{pointer}/orderDetail/{k}", found, problems)
    for k, extension in enumerate(resource.extension or []):
        field = next((f for f, (url, _) in _EXTENSIONS.items() if url == extension.url), None)
        if field is None:
            continue
        kind = _EXTENSIONS[field][1]
        value = getattr(extension, kind, None)
        if value is None:
            problems.add(f"{pointer}/extension/{k}", "required", f"give {kind} for extension {extension.url}")
        else:
            found[field] = value
    return found or None
