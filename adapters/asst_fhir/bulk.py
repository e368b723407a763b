"""The trust's FHIR Bulk Data ``$export`` (NDJSON) read for a backfill
(:attr:`adapters.descriptor.PartnerDescriptor.bulk_export`): every resource but the Patients becomes a unit of its
own, a ``collection`` Bundle with the Patient it refers to (``Patient.ndjson`` gives the persons; Patients
themselves are not messages), so that one bad resource is counted as invalid instead of refusing the export.

Each unit's Bundle entry gets a ``urn:uuid`` full URL derived from the line's bytes, so a unit read again is the
same message (the decoder's message id is ``<type>:<id>:<versionId>``, or that ``urn:uuid`` without a versionId).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from adapters.asst_fhir.inbound import _MESSAGE_RESOURCES  # the decoder's own rule, private to this package
from adapters.descriptor import BulkExport, BulkExportError

__all__ = ["BULK_EXPORT", "count_resources", "resources"]

_UNIT_NAMESPACE: Final = uuid.UUID("7b0c2f1e-5d0a-4a51-9a1c-2f8f0c6b9a11")


def _ndjson_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield number, line


def _resource(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        resource = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BulkExportError(f"{path} line {number} is not JSON: a Bulk Data file holds one resource per line"
                              ) from None
    if not isinstance(resource, dict):
        raise BulkExportError(f"{path} line {number} is not a FHIR resource (a JSON object)")
    return resource


def resources(paths: Sequence[Path]) -> Iterator[tuple[bytes, str]]:
    """Every resource of ``paths`` but the Patients, as a one-unit Bundle ``(raw, "application/fhir+json")``, in
    file order."""
    patients: dict[str, bytes] = {}
    for path in paths:
        for number, line in _ndjson_lines(path):
            resource = _resource(path, number, line)
            if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
                patients[resource["id"]] = line
    for path in paths:
        for number, line in _ndjson_lines(path):
            resource = _resource(path, number, line)
            kind = resource.get("resourceType")
            if kind == "Patient":
                continue
            unit_id = uuid.uuid5(_UNIT_NAMESPACE, line.strip().decode("utf-8", "replace"))
            entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{unit_id}", "resource": resource}]
            if kind in _MESSAGE_RESOURCES:
                reference = (resource.get("subject") or resource.get("patient") or {}).get("reference")
                if isinstance(reference, str) and reference.startswith("Patient/"):
                    patient = patients.get(reference.removeprefix("Patient/"))
                    if patient is not None:
                        entries.append({"resource": orjson.loads(patient)})
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
            yield orjson.dumps(bundle), "application/fhir+json"


def count_resources(paths: Sequence[Path]) -> int:
    """How many units :func:`resources` yields, without building them."""
    return sum(1 for path in paths for number, line in _ndjson_lines(path)
               if _resource(path, number, line).get("resourceType") != "Patient")


BULK_EXPORT: Final = BulkExport(description="FHIR Bulk Data NDJSON", units=resources, count=count_resources)
