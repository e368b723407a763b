"""``statistics.aggregate``: what the statistics flows (F6 care activity, F13 flow activity) deliver.

An aggregate is about no one: it has no subject, so it never travels in the canonical envelope. It names its
flow and month, the smallest number of events a published cell stands for (``threshold``), and per measure the
cells by coded dimensions. A suppressed cell says so and carries no value (``value`` null), never the number.
Dimensions are a closed list: nothing in the message can name or rank an operator (seed 003 §4.5).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = ["STATISTICS_MESSAGE_TYPES", "AggregateMeasure", "Dimension", "StatisticsAggregate", "StatisticsCell"]

Dimension = Literal["quartiere", "flow", "outcome", "vaccine_group"]
"""What a cell may be broken down by: a quartieri code (or ``non-indicato``), a flow id (or ``non-dichiarato``),
a decision outcome (``permit`` / ``deny``), a vaccine group (``influenza``, ``covid-19``, ``pneumococcal``,
``zoster``, ``other``)."""

Measure = Literal["visits", "care-minutes", "vaccinations", "decisions"]
"""``visits`` finished care visits, ``care-minutes`` their minutes (hours x 60), ``vaccinations``
vaccinations given, per vaccine group (F6); ``decisions`` flow decisions (F13)."""

DimensionValue = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9\-]*$")]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StatisticsCell(_Payload):
    """One cell: its dimension values and its value, or no value when suppressed."""

    key: dict[Dimension, DimensionValue]
    value: Annotated[int, Field(ge=0)] | None
    """The count (or the sum of minutes); null when suppressed."""
    suppressed: bool
    """Fewer events than ``threshold`` (primary) or hidden so a suppressed neighbour cannot be recovered
    (secondary)."""

    @model_validator(mode="after")
    def _suppressed_cells_have_no_value(self) -> StatisticsCell:
        if self.suppressed != (self.value is None):
            raise ValueError("a cell has a value exactly when it is not suppressed")
        return self


class AggregateMeasure(_Payload):
    """One measure broken down by ``dimensions``."""

    measure: Measure
    unit: Literal["count", "minutes"]
    dimensions: tuple[Dimension, ...] = Field(min_length=1)
    cells: tuple[StatisticsCell, ...]

    @model_validator(mode="after")
    def _cells_use_the_dimensions(self) -> AggregateMeasure:
        if any(set(cell.key) != set(self.dimensions) for cell in self.cells):
            raise ValueError("every cell names exactly the measure's dimensions")
        return self


class StatisticsAggregate(_Payload):
    """``statistics.aggregate``: a statistics flow's aggregates for one month, as one recipient receives them."""

    message_type: Literal["statistics.aggregate"]
    flow: Annotated[str, StringConstraints(pattern=r"^F[0-9]+(-[a-z0-9\-]+)?$")]
    """The declared flow it was published under (``F6``, ``F6-regione``, ``F13``...)."""
    period: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    """The calendar month counted, ``YYYY-MM`` (Europe/Rome)."""
    threshold: Annotated[int, Field(ge=1)]
    """Cells standing for fewer events than this are suppressed."""
    generated_at: AwareDatetime
    measures: tuple[AggregateMeasure, ...]


STATISTICS_MESSAGE_TYPES: dict[str, type[BaseModel]] = {"statistics.aggregate": StatisticsAggregate}
"""The statistics message types by name, to merge into :data:`schemas.messages.MESSAGE_TYPES`."""
