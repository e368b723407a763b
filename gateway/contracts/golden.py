"""Golden examples of what each partner sends: valid native messages and invalid ones with the problems the
gateway must report for them, gathered from the partners' descriptors (:attr:`PartnerDescriptor.examples
<adapters.descriptor.PartnerDescriptor.examples>`, written in ``adapters/<partner>/examples.py``).

Published under ``contracts/examples/<partner>/{valid,invalid}/``; every invalid ``<name>.json`` (or
``<name>.csv``, ALER's bulk tenancy export) has a ``<name>.expected.json`` listing the ``pointer`` and ``rule``
of each problem, in order (the message texts are left out so their wording can evolve). Everything is
deterministic: fixed ids and dates, and codici fiscali drawn from a seeded generator of synthetic ones. A test
regenerates the examples in memory and fails when the checked-in files drift, and checks each against the
decoders.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from adapters._golden import CFS, dumps
from adapters.descriptor import Mutation, PartnerDescriptor
from gateway.partners import PARTNERS

__all__ = ["CFS", "CONTENT_TYPES", "content_type", "golden_examples", "mutated", "write_golden_examples"]

CONTENT_TYPES: dict[str, str] = {p.organisation: p.content_type for p in PARTNERS if p.examples is not None}
"""The content type each built-in partner sends its examples with (ALER's ``.csv`` exports: :func:`content_type`)."""


def content_type(path: str, partners: Iterable[PartnerDescriptor] = PARTNERS) -> str:
    """The content type the example at ``path`` (``<partner>/...``) is sent with."""
    organisation = path.split("/", 1)[0]
    partner = next(p for p in partners if p.organisation == organisation)
    examples = partner.examples
    if examples is not None and examples.files_content_type and not path.endswith(".json"):
        return examples.files_content_type
    return partner.content_type


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with ``value`` at the slash-separated ``path`` (``...`` deletes the key)."""
    result = copy.deepcopy(document)
    *parents, last = path.split("/")
    target: Any = result
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return result


def mutated(valid: Mapping[str, Any], mutation: Mutation) -> bytes:
    """The body of an invalid example: the raw bytes, or a valid example with one value changed or deleted."""
    if isinstance(mutation, bytes):
        return mutation
    source, path, value = mutation
    return dumps(_set(valid[source], path, value))


def _expected(problems: Iterable[tuple[str, str]]) -> bytes:
    return dumps([{"pointer": pointer, "rule": rule} for pointer, rule in problems])


def golden_examples(partners: Iterable[PartnerDescriptor] = PARTNERS) -> dict[str, bytes]:
    """Relative path under ``contracts/examples/`` -> file content, for every golden example of ``partners``."""
    files: dict[str, bytes] = {}
    for partner in partners:
        examples = partner.examples
        if examples is None:
            continue
        base = partner.organisation
        valid = examples.valid()
        for name, document in valid.items():
            files[f"{base}/valid/{name}.json"] = dumps(document)
        for name, (mutation, problems) in examples.invalid.items():
            files[f"{base}/invalid/{name}.json"] = mutated(valid, mutation)
            files[f"{base}/invalid/{name}.expected.json"] = _expected(problems)
        for file_name, make in examples.valid_files.items():
            files[f"{base}/valid/{file_name}"] = make()
        for file_name, (make, problems) in examples.invalid_files.items():
            files[f"{base}/invalid/{file_name}"] = make()
            files[f"{base}/invalid/{file_name.rsplit('.', 1)[0]}.expected.json"] = _expected(problems)
    return dict(sorted(files.items()))


def write_golden_examples(directory: Path) -> list[Path]:
    """Write every golden example under ``directory``; returns the files written."""
    written = []
    for relative, content in golden_examples().items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(target)
    return written
