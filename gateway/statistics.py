"""Aggregates for statistics flows (F6 care activity per neighbourhood, F13 flow activity): counts by
dimensions with small cells suppressed, never per person and never per operator.

Primary suppression hides every cell below the threshold; secondary suppression then hides, in each group
of cells that share all dimensions but one, the next smallest cell when exactly one is hidden, so a hidden
value cannot be recovered from a published total. Totals are computed from published cells only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["AggregateCell", "aggregate"]

OPERATOR_DIMENSIONS = frozenset({"operator", "client_id", "user", "nurse", "community_manager"})
"""Dimensions that would rank individual operators (seed 003 §4.5): refused."""


@dataclass(frozen=True, slots=True)
class AggregateCell:
    """One cell: its dimension values and a count, or ``None`` when suppressed."""

    key: tuple[str, ...]
    count: int | None
    suppressed: bool


def aggregate(
    events: Iterable[Mapping[str, str]],
    dimensions: Sequence[str],
    threshold: int = 5,
    weights: Iterable[int] | None = None,
) -> list[AggregateCell]:
    """Count ``events`` by ``dimensions`` (optionally summing ``weights``, e.g. minutes of care) and
    suppress cells whose number of contributing events is below ``threshold``."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    refused = OPERATOR_DIMENSIONS.intersection(dimensions)
    if refused:
        raise ValueError(f"aggregates never rank individual operators: {', '.join(sorted(refused))}")
    contributors: Counter[tuple[str, ...]] = Counter()
    totals: Counter[tuple[str, ...]] = Counter()
    weight_list = list(weights) if weights is not None else None
    for i, event in enumerate(events):
        key = tuple(str(event[d]) for d in dimensions)
        contributors[key] += 1
        totals[key] += weight_list[i] if weight_list is not None else 1
    hidden = {key for key, n in contributors.items() if n < threshold}
    hidden |= _secondary(contributors, hidden, len(dimensions))
    return [AggregateCell(key, None if key in hidden else totals[key], key in hidden) for key in sorted(contributors)]


def _secondary(
    contributors: Counter[tuple[str, ...]], hidden: set[tuple[str, ...]], width: int
) -> set[tuple[str, ...]]:
    extra: set[tuple[str, ...]] = set()
    changed = True
    while changed:
        changed = False
        for axis in range(width):
            groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
            for key in contributors:
                groups.setdefault(key[:axis] + key[axis + 1 :], []).append(key)
            for members in groups.values():
                concealed = [k for k in members if k in hidden or k in extra]
                visible = sorted(
                    (k for k in members if k not in hidden and k not in extra), key=lambda k: contributors[k]
                )
                if len(concealed) == 1 and visible:
                    extra.add(visible[0])
                    changed = True
    return extra
