"""Bulk backfill for onboarding a partner: its bulk export (ALER's tenancy CSV export, an ASST FHIR Bulk Data
``$export`` in NDJSON, for instance) decided through the same intake as live traffic (:meth:`Intake.process`, in
batches), so every record gets the same decisions, audit records and outgoing messages as if it had arrived on
``in.<partner>``.

The partner's descriptor says how its export is read (:attr:`adapters.descriptor.PartnerDescriptor.bulk_export`):
each record of the input is one *unit*, decoded on its own so that one bad record is counted as invalid instead
of rejecting the file (a CSV row becomes a one-row export, a FHIR resource a ``collection`` Bundle with the
Patient it refers to). Message ids are deterministic (the partner's adapter derives them from the record), so the
intake's replay guard recognises a record already decided.

Resuming after a crash or Ctrl-C uses both:

- a checkpoint file beside the (first) input, ``<input>.backfill.json``, rewritten atomically after every
  committed batch, says how many units are done; a resumed run skips them without decoding them again. It also
  pins the inputs (name, size, modification time): a changed input is refused rather than resumed wrongly;
- the replay guard covers the window between a batch's commit and its checkpoint: the batch is read again and
  its messages come back ``already-decided``, never decided twice.

The checkpoint is removed once the whole input is done. Progress and summaries carry counts only, never a
record's content.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NewType

import orjson

from adapters.descriptor import BulkExport, BulkExportError
from gateway.errors import InputError
from gateway.partners import BUILT_IN, descriptor
from gateway.pipeline.intake import Intake, Submission
from schemas.envelope import Envelope

__all__ = ["BackfillError", "BackfillSummary", "Invalid", "Source", "backfill", "checkpoint_path", "count_units",
           "units"]

Source = NewType("Source", str)
"""The organisation whose bulk export is read: a partner whose descriptor has one
(:attr:`adapters.descriptor.PartnerDescriptor.bulk_export`)."""
_CHECKPOINT_VERSION = 1
MAX_INVALID_SHOWN = 20


class BackfillError(Exception):
    """An input or checkpoint the backfill cannot work with; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """A unit the partner's decoder refused: where it is and which rules it broke (never its content)."""

    unit: int
    """0-based position of the record among the input's records."""
    reason: str
    rules: tuple[str, ...]


@dataclass
class BackfillSummary:
    """What a backfill run did, by outcome."""

    total: int
    """Records (units) in the input."""
    skipped: int = 0
    """Records done by an earlier run, per its checkpoint."""
    done: int = 0
    """Records handled by this run."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """``forwarded``, ``denied:<reason class>``, ``already-decided``, ``invalid`` -> count of messages
    (``invalid`` counts records)."""
    invalid: list[Invalid] = field(default_factory=list)
    """The first :data:`MAX_INVALID_SHOWN` invalid records."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "skipped": self.skipped, "done": self.done,
                "outcomes": dict(sorted(self.outcomes.items())), "seconds": round(self.seconds, 3),
                "invalid": [{"unit": i.unit, "reason": i.reason, "rules": list(i.rules)} for i in self.invalid]}


def checkpoint_path(inputs: Sequence[Path]) -> Path:
    """The checkpoint file of a backfill of ``inputs``: beside the first one."""
    first = inputs[0]
    return first.with_name(first.name + ".backfill.json")


# --- units --------------------------------------------------------------------------------------------------


def _bulk_export(source: Source) -> BulkExport:
    partner = descriptor(source)
    if partner is None or partner.bulk_export is None:
        readers = [f"{o} ({d.bulk_export.description})" for o in BUILT_IN
                   if (d := descriptor(o)) is not None and d.bulk_export is not None]
        raise BackfillError(f"no backfill from {source!r}: use {' or '.join(readers)}")
    return partner.bulk_export


def units(source: Source, inputs: Sequence[Path]) -> Iterator[tuple[bytes, str]]:
    """Every record of the input as ``(raw, content type)``, in file order, read by the partner's bulk export
    reader (see the module docstring)."""
    reader = _bulk_export(source)
    if not inputs:
        raise BackfillError("give at least one input file")
    for path in inputs:
        if not path.is_file():
            raise BackfillError(f"{path} is not a file")
    try:
        return _reported(reader.units(inputs))
    except BulkExportError as exc:
        raise BackfillError(str(exc)) from None


def _reported(pending: Iterator[tuple[bytes, str]]) -> Iterator[tuple[bytes, str]]:
    """``pending``, its reader's :class:`BulkExportError` raised as :class:`BackfillError`."""
    try:
        yield from pending
    except BulkExportError as exc:
        raise BackfillError(str(exc)) from None


def count_units(source: Source, inputs: Sequence[Path]) -> int:
    """How many units :func:`units` yields, without building them (for the progress bar's total)."""
    try:
        return _bulk_export(source).count(inputs)
    except BulkExportError as exc:
        raise BackfillError(str(exc)) from None


# --- checkpoint ---------------------------------------------------------------------------------------------


def _fingerprint(source: Source, inputs: Sequence[Path]) -> dict[str, Any]:
    return {"source": source, "inputs": [{"name": p.name, "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
                                         for p in inputs]}


def _read_checkpoint(path: Path, fingerprint: dict[str, Any]) -> int:
    if not path.exists():
        return 0
    try:
        saved = orjson.loads(path.read_bytes())
        done = int(saved["done"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise BackfillError(f"the checkpoint {path} cannot be read: delete it to start over (records already "
                            "decided are recognised and not decided again)") from None
    if saved.get("version") != _CHECKPOINT_VERSION or saved.get("fingerprint") != fingerprint:
        raise BackfillError(f"the input changed since the checkpoint {path} was written: delete it to start over "
                            "(records already decided are recognised and not decided again)")
    return done


def _write_checkpoint(path: Path, fingerprint: dict[str, Any], done: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(orjson.dumps({"version": _CHECKPOINT_VERSION, "fingerprint": fingerprint, "done": done,
                                        "at": datetime.now(UTC).isoformat()}))
    os.replace(temporary, path)


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class _Decoded:
    units: list[tuple[bytes, str]]
    items: list[tuple[Envelope, Submission]] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)


async def backfill(intake: Intake, source: Source, inputs: Sequence[Path], *, batch_size: int = 300,
                   requested_by: str = "backfill",
                   on_progress: Callable[[BackfillSummary], None] | None = None,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> BackfillSummary:
    """Decide every record of ``inputs`` not done yet, ``batch_size`` records per transaction; resumable (see
    the module docstring). ``on_progress`` is called after each committed batch (and once at the start)."""
    if batch_size < 1:
        raise BackfillError("the batch size must be at least 1")
    inputs = [Path(p) for p in inputs]
    pending = units(source, inputs)  # checks the inputs first; then streamed, never all in memory
    total = count_units(source, inputs)
    fingerprint = _fingerprint(source, inputs)
    checkpoint = checkpoint_path(inputs)
    skipped = min(_read_checkpoint(checkpoint, fingerprint), total)
    summary = BackfillSummary(total=total, skipped=skipped)
    run = uuid.uuid4().hex[:12]
    started = clock()
    if on_progress is not None:
        on_progress(summary)
    pending = itertools.islice(pending, skipped, None)

    def decoded(first: int) -> _Decoded:
        """The next batch read and decoded (in a worker thread, while the previous batch is being committed)."""
        result = _Decoded(list(itertools.islice(pending, batch_size)))
        for offset, (raw, content_type) in enumerate(result.units):
            submission = Submission(sender=source, sender_role="system", raw=raw, content_type=content_type,
                                    request_id=f"backfill-{run}-{first + offset}",
                                    client_id=f"backfill:{requested_by}")
            try:
                result.items += [(envelope, submission) for envelope in intake.decode(submission)]
            except InputError as exc:
                result.invalid.append(Invalid(first + offset, exc.slug, tuple(sorted({p.rule for p in exc.problems}))))
        return result

    start = skipped
    batch = await asyncio.to_thread(decoded, start)
    while batch.units:
        following = asyncio.ensure_future(asyncio.to_thread(decoded, start + len(batch.units)))
        try:
            batch_started = clock()
            statuses = await intake.process(batch.items)
        except BaseException:
            following.cancel()
            raise
        for status in statuses:
            if status.received_at < batch_started:
                summary.outcomes["already-decided"] += 1
            elif status.state == "denied" and status.reason_class:
                summary.outcomes[f"denied:{status.reason_class}"] += 1
            else:
                summary.outcomes[status.state] += 1
        if batch.invalid:
            summary.outcomes["invalid"] += len(batch.invalid)
            summary.invalid += batch.invalid[: MAX_INVALID_SHOWN - len(summary.invalid)]
        summary.done += len(batch.units)
        start += len(batch.units)
        _write_checkpoint(checkpoint, fingerprint, start)
        summary.seconds = (clock() - started).total_seconds()
        if on_progress is not None:
            try:
                on_progress(summary)
            except BaseException:
                following.cancel()
                raise
        batch = await following
    checkpoint.unlink(missing_ok=True)
    summary.seconds = (clock() - started).total_seconds()
    return summary
