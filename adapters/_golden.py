"""What the partners' golden examples share: the seed, the synthetic people they are about, and small helpers.

Every example is deterministic: fixed ids and dates, and codici fiscali drawn in a fixed order from a seeded
generator of synthetic ones (the order is part of the published examples: do not reorder).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

from gateway.identity.codice_fiscale import check_character
from gateway.identity.synthetic import synthetic_codice_fiscale

__all__ = ["CFS", "OCCURRED", "SEED", "dumps", "wrong_check_character"]

SEED = 20261120
OCCURRED = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
_rng = random.Random(SEED)  # noqa: S311 - synthetic identifiers, reproducible on purpose
CF_ALER = synthetic_codice_fiscale(_rng)
CF_ASST = synthetic_codice_fiscale(_rng)
CF_COMUNE = synthetic_codice_fiscale(_rng)
CF_ALER_EXPORT = synthetic_codice_fiscale(_rng)
CF_FSE = synthetic_codice_fiscale(_rng, birth_year=1946)
CF_FSE_OTHER = synthetic_codice_fiscale(_rng, birth_year=1951)
CFS = (CF_ALER, CF_ASST, CF_COMUNE, CF_ALER_EXPORT, CF_FSE, CF_FSE_OTHER)
"""The synthetic codici fiscali the examples carry."""
del _rng


def dumps(document: Any) -> bytes:
    """A JSON example as published: indented, UTF-8, with a final newline."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def wrong_check_character(cf: str) -> str:
    """``cf`` with a check character that does not match."""
    right = check_character(cf[:15])
    return cf[:15] + ("A" if right != "A" else "B")
