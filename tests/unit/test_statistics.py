"""Aggregates for F6/F13: small cells suppressed, suppressed values not recoverable, no operator ranking."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.statistics.counting import ActivityEvent, aggregate, combine_decisions


def events(quartiere: str, month: str, n: int) -> list[dict[str, str]]:
    return [{"quartiere": quartiere, "month": month}] * n


def test_cells_below_the_threshold_are_suppressed() -> None:
    data = events("san-siro", "2026-10", 12) + events("mazzini", "2026-10", 3) + events("gratosoglio", "2026-10", 7)
    cells = {c.key: c for c in aggregate(data, ["quartiere", "month"], threshold=5)}
    assert cells[("mazzini", "2026-10")].suppressed and cells[("mazzini", "2026-10")].count is None
    assert cells[("san-siro", "2026-10")].count == 12


def test_a_lone_suppressed_cell_takes_a_neighbour_with_it() -> None:
    data = events("san-siro", "2026-10", 12) + events("mazzini", "2026-10", 3) + events("gratosoglio", "2026-10", 7)
    cells = {c.key: c for c in aggregate(data, ["quartiere", "month"], threshold=5)}
    # with the month total known, mazzini = total - san-siro - gratosoglio unless one more cell is hidden
    assert cells[("gratosoglio", "2026-10")].suppressed
    assert not cells[("san-siro", "2026-10")].suppressed


def test_weights_are_summed_but_suppression_counts_events() -> None:
    data = events("san-siro", "2026-10", 6)
    [cell] = aggregate(data, ["quartiere"], threshold=5, weights=[30] * 6)
    assert cell.count == 180


def test_an_entry_standing_for_several_events_counts_them_and_so_does_suppression() -> None:
    data = events("san-siro", "2026-10", 2) + events("mazzini", "2026-10", 1) + events("navigli", "2026-10", 1)
    cells = {c.key: c for c in aggregate(data, ["quartiere"], threshold=5, occurrences=[3, 2, 4, 1])}
    assert cells[("san-siro",)].count == 5 and not cells[("san-siro",)].suppressed
    assert cells[("mazzini",)].suppressed  # 4 decisions, below 5, in one entry
    assert cells[("navigli",)].suppressed
    [cell] = aggregate(events("san-siro", "2026-10", 1), ["quartiere"], threshold=5, weights=[30], occurrences=[6])
    assert cell.count == 30 and not cell.suppressed  # weights summed; 6 events contributed


DIMENSIONS = ("quartiere", "flow_id", "recipient", "outcome")


@given(st.lists(st.tuples(st.sampled_from(["2026-10", "2026-11"]), st.sampled_from(["aler", "asst"]),
                          st.sampled_from(["mazzini", "san-siro"]), st.sampled_from(["F1", "F5", None]),
                          st.sampled_from(["fwa", "comune"]), st.sampled_from(["permit", "deny"])), max_size=40),
       st.integers(1, 6))
def test_a_batch_of_decisions_combined_publishes_the_cells_of_every_decision_counted_alone(
        decided: list[tuple[str, str, str, str | None, str, str]], threshold: int) -> None:
    """What the store keeps of a batch (its alike decisions as one weighted event each) publishes exactly what one
    event per decision would: every count and every suppression the same."""
    alone = [ActivityEvent(month, "decision", source, quartiere, flow, recipient, outcome)  # type: ignore[arg-type]
             for month, source, quartiere, flow, recipient, outcome in decided]
    combined = combine_decisions(alone)
    assert sum(e.occurrences for e in combined) == len(alone)
    assert len(combined) == len(set(alone))
    assert all(e.weight == alone.count(replace(e, weight=1)) for e in combined)

    def published(kept: list[ActivityEvent]) -> list[tuple[tuple[str, ...], int | None, bool]]:
        cells = aggregate([{d: str(getattr(e, d)) for d in DIMENSIONS} for e in kept], DIMENSIONS, threshold,
                          occurrences=[e.occurrences for e in kept])
        return [(c.key, c.count, c.suppressed) for c in cells]

    assert published(combined) == published(alone)


def test_operator_dimensions_are_refused() -> None:
    with pytest.raises(ValueError, match="operators"):
        aggregate([], ["quartiere", "operator"])


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from("xyz")), max_size=60), st.integers(1, 8))
def test_no_published_cell_is_below_threshold_and_no_group_hides_exactly_one(
    pairs: list[tuple[str, str]], threshold: int
) -> None:
    data = [{"q": q, "m": m} for q, m in pairs]
    cells = aggregate(data, ["q", "m"], threshold=threshold)
    counts = {(q, m): pairs.count((q, m)) for q, m in pairs}
    for cell in cells:
        if not cell.suppressed:
            assert cell.count == counts[cell.key] >= threshold
    for axis in (0, 1):
        groups: dict[str, list[bool]] = {}
        for cell in cells:
            groups.setdefault(cell.key[1 - axis], []).append(cell.suppressed)
        for flags in groups.values():
            assert sum(flags) != 1 or len(flags) == 1
