"""Deterministic synthetic ALER tenancies for tests, demos and benchmarks.

Everything is drawn from a seeded :class:`random.Random`: the same tier and seed always give the same
tenancies, in the same order, and ``limit`` only truncates that sequence. No real person's data is used;
a synthetic codice fiscale is well formed and valid but its name codes are random consonants, unrelated to
the generated names (it may still coincide with a real person's code, so treat generated data as if it
were personal data: do not publish it next to real records).

Sizes and shapes come from ``design/domain.md``:

* tier sizes (tenancies): S 11,000 (pilot), M 16,000 (6 quartieri), L 35,000 (ALER in Milan city),
  XL 150,000 (all Lombardy);
* quartieri in proportion to the units table (San Siro 4,757; Gratosoglio 3,136; Molise Calvairate 1,447;
  Mazzini 1,612). The seeds give no figures for Lorenteggio and Salomone: tier M splits its remaining
  5,048 tenancies between them 60/40 (assumption). Tier L adds ``other-milano`` and XL ``other-lombardia``
  for the rest;
* about 82% of households in the social-protection rent band (9,000 of about 11,000), about 40% of those
  single-person, mostly elderly.

Rent-band, ISEE-band, household-type, arrears and birthplace distributions beyond those figures are
assumptions chosen to look plausible, not statistics.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

from gateway.identity.codice_fiscale import MONTH_LETTERS, canonical, check_character, omocodic_variant

__all__ = [
    "HOUSEHOLD_TYPES",
    "ISEE_BANDS",
    "QUARTIERE_UNITS",
    "QUARTIERI",
    "RENT_BANDS",
    "TIER_QUARTIERE_WEIGHTS",
    "TIER_TENANCIES",
    "HouseholdType",
    "IseeBand",
    "Quartiere",
    "RentBand",
    "SyntheticTenant",
    "Tier",
    "generate_tenants",
    "quartiere_allocation",
    "synthetic_codice_fiscale",
]

Tier = Literal["S", "M", "L", "XL"]
Quartiere = Literal[
    "san-siro",
    "gratosoglio",
    "molise-calvairate",
    "mazzini",
    "lorenteggio",
    "salomone",
    "other-milano",
    "other-lombardia",
]
HouseholdType = Literal[
    "couple-several-minors",
    "single-mother-minors",
    "single-adult",
    "mother-newly-adult-child",
    "adult-with-over-65",
    "couple-minors-over-65",
    "elderly-single",
]
IseeBand = Literal["isee-0-6000", "isee-6000-20000", "isee-20000-30000", "isee-over-30000"]
RentBand = Literal["protezione", "accesso", "permanenza", "decadenza"]

QUARTIERI: Final[tuple[Quartiere, ...]] = (
    "san-siro",
    "gratosoglio",
    "molise-calvairate",
    "mazzini",
    "lorenteggio",
    "salomone",
    "other-milano",
    "other-lombardia",
)
HOUSEHOLD_TYPES: Final[tuple[HouseholdType, ...]] = (
    "couple-several-minors",
    "single-mother-minors",
    "single-adult",
    "mother-newly-adult-child",
    "adult-with-over-65",
    "couple-minors-over-65",
    "elderly-single",
)
ISEE_BANDS: Final[tuple[IseeBand, ...]] = (
    "isee-0-6000",
    "isee-6000-20000",
    "isee-20000-30000",
    "isee-over-30000",
)
RENT_BANDS: Final[tuple[RentBand, ...]] = ("protezione", "accesso", "permanenza", "decadenza")

TIER_TENANCIES: Final[Mapping[Tier, int]] = {"S": 11_000, "M": 16_000, "L": 35_000, "XL": 150_000}

QUARTIERE_UNITS: Final[Mapping[Quartiere, int]] = {
    "san-siro": 4_757,
    "gratosoglio": 3_136,
    "molise-calvairate": 1_447,
    "mazzini": 1_612,
}
"""ALER units per quartiere from the seed (pilot quartieri only)."""

_PILOT_UNITS: Final = sum(QUARTIERE_UNITS.values())  # 10,952
_M_REST: Final = TIER_TENANCIES["M"] - _PILOT_UNITS  # 5,048: Lorenteggio + Salomone (assumed 60/40)
_LORENTEGGIO: Final = round(_M_REST * 0.6)
_SALOMONE: Final = _M_REST - _LORENTEGGIO

TIER_QUARTIERE_WEIGHTS: Final[Mapping[Tier, Mapping[Quartiere, int]]] = {
    "S": dict(QUARTIERE_UNITS),
    "M": {**QUARTIERE_UNITS, "lorenteggio": _LORENTEGGIO, "salomone": _SALOMONE},
    "L": {
        **QUARTIERE_UNITS,
        "lorenteggio": _LORENTEGGIO,
        "salomone": _SALOMONE,
        "other-milano": TIER_TENANCIES["L"] - TIER_TENANCIES["M"],
    },
    "XL": {
        **QUARTIERE_UNITS,
        "lorenteggio": _LORENTEGGIO,
        "salomone": _SALOMONE,
        "other-milano": TIER_TENANCIES["L"] - TIER_TENANCIES["M"],
        "other-lombardia": TIER_TENANCIES["XL"] - TIER_TENANCIES["L"],
    },
}
"""Relative weight of each quartiere per tier (units for the pilot quartieri, assumed counts otherwise)."""

# --- distributions (assumptions, see module docstring) -------------------------------------------------

_RENT_BAND_WEIGHTS: Final[tuple[float, ...]] = (0.818, 0.11, 0.052, 0.02)

_HOUSEHOLD_WEIGHTS: Final[Mapping[RentBand, tuple[float, ...]]] = {
    # order of HOUSEHOLD_TYPES; protezione: 40% single-person (elderly-single 30 + single-adult 10)
    "protezione": (0.12, 0.14, 0.10, 0.08, 0.14, 0.12, 0.30),
    "accesso": (0.20, 0.10, 0.15, 0.10, 0.15, 0.15, 0.15),
    "permanenza": (0.20, 0.10, 0.15, 0.10, 0.15, 0.15, 0.15),
    "decadenza": (0.20, 0.10, 0.15, 0.10, 0.15, 0.15, 0.15),
}
_ISEE_WEIGHTS: Final[Mapping[RentBand, tuple[float, ...]]] = {
    # order of ISEE_BANDS
    "protezione": (0.55, 0.45, 0.0, 0.0),
    "accesso": (0.0, 0.85, 0.15, 0.0),
    "permanenza": (0.0, 0.30, 0.70, 0.0),
    "decadenza": (0.0, 0.0, 0.10, 0.90),
}
_ARREARS_PROBABILITY: Final[Mapping[RentBand, float]] = {
    "protezione": 0.30,
    "accesso": 0.20,
    "permanenza": 0.12,
    "decadenza": 0.25,
}
_MONTHLY_RENT_EUR: Final[Mapping[RentBand, tuple[int, int]]] = {
    "protezione": (40, 120),
    "accesso": (120, 300),
    "permanenza": (250, 500),
    "decadenza": (400, 800),
}
_BIRTH_YEARS: Final[Mapping[HouseholdType, tuple[int, int]]] = {
    "couple-several-minors": (1975, 1998),
    "single-mother-minors": (1975, 2002),
    "single-adult": (1958, 2003),
    "mother-newly-adult-child": (1960, 1985),
    "adult-with-over-65": (1955, 1990),
    "couple-minors-over-65": (1965, 1992),
    "elderly-single": (1928, 1959),
}
_FEMALE_PROBABILITY: Final[Mapping[HouseholdType, float]] = {
    "couple-several-minors": 0.45,
    "single-mother-minors": 1.0,
    "single-adult": 0.45,
    "mother-newly-adult-child": 1.0,
    "adult-with-over-65": 0.55,
    "couple-minors-over-65": 0.45,
    "elderly-single": 0.68,
}
_OMOCODIA_PROBABILITY: Final = 0.005

_CONSONANTS: Final = "BCDFGHJKLMNPQRSTVWXZ"

# Belfiore codes: Milano; the metropolitan area and Lombardy; other Italian cities; countries of birth
# common among Milan's public-housing tenants.
_BIRTHPLACE_GROUPS: Final[tuple[tuple[float, tuple[str, ...]], ...]] = (
    (0.55, ("F205",)),  # Milano
    # Sesto San Giovanni, Cinisello Balsamo, Legnano, Monza, Bergamo, Brescia, Pavia, Como, Varese
    (0.10, ("I690", "C707", "E514", "F704", "A794", "B157", "G388", "C933", "L682")),
    # Roma, Torino, Napoli, Palermo, Bari, Genova, Catania
    (0.15, ("H501", "L219", "F839", "G273", "A662", "D969", "C351")),
    # Albania, Romania, Marocco, Egitto, Peru, Filippine, Ecuador, Cina, Sri Lanka, Senegal, Tunisia,
    # Algeria, India, Bangladesh
    (
        0.20,
        (
            "Z100", "Z129", "Z330", "Z336", "Z611", "Z216", "Z605",
            "Z210", "Z209", "Z343", "Z352", "Z301", "Z222", "Z249",
        ),
    ),
)  # fmt: skip

_FAMILY_NAMES: Final = (
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
    "Bruno", "Gallo", "Conti", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti", "Barbieri",
    "Fontana", "Santoro", "Mariani", "Rinaldi", "Caruso", "Ferrara", "Galli", "Martini", "Leone", "Longo",
    "Gentile", "Martinelli", "Vitale", "Lombardo", "Serra", "Coppola", "Villa", "Marchetti", "Brambilla",
    "Sala",
)  # fmt: skip
_FEMALE_NAMES: Final = (
    "Maria", "Anna", "Giuseppina", "Rosa", "Angela", "Giovanna", "Teresa", "Lucia", "Carmela", "Francesca",
    "Paola", "Laura", "Giulia", "Sara", "Chiara", "Elena", "Valentina", "Silvia", "Federica", "Martina",
)  # fmt: skip
_MALE_NAMES: Final = (
    "Giuseppe", "Giovanni", "Antonio", "Mario", "Luigi", "Francesco", "Angelo", "Vincenzo", "Pietro",
    "Salvatore", "Carlo", "Franco", "Marco", "Andrea", "Luca", "Alessandro", "Paolo", "Stefano", "Davide",
    "Matteo",
)  # fmt: skip

_CONTRACT_NUMBERS: Final = range(10_000_000, 100_000_000)  # 8 digits
_UNIT_NUMBERS: Final = range(1_000_000, 10_000_000)  # 7 digits

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SyntheticTenant:
    """One synthetic ALER tenancy, seen through its holder."""

    cf: str
    """Holder's codice fiscale (valid; about 0.5% are omocodia variants)."""
    given_name: str
    family_name: str
    quartiere: Quartiere
    household_type: HouseholdType
    isee_band: IseeBand
    rent_band: RentBand
    contract_id: str
    """``ALER-C-`` and 8 digits; unique within a generated set."""
    unit_id: str
    """``ALER-U-`` and 7 digits; unique within a generated set."""
    arrears_cents: int
    """Arrears amount in euro cents; 0 when there are no arrears."""
    arrears_months: int
    """Months in arrears; 0 when there are no arrears."""


def synthetic_codice_fiscale(
    rng: random.Random,
    *,
    female: bool | None = None,
    birth_year: int | None = None,
    omocodia: bool = False,
) -> str:
    """A valid, random codice fiscale.

    Name codes are three random consonants each; the birth date is a real calendar date in ``birth_year``
    (random 1930-2005 when not given), with 40 added to the day for women (``female`` random when not
    given); the birthplace is a Belfiore code, Milano (F205) most often. With ``omocodia`` the result is an
    omocodia variant with 1-3 substitutions.
    """
    if female is None:
        female = rng.random() < 0.5
    if birth_year is None:
        birth_year = rng.randint(1930, 2005)
    name_codes = "".join(rng.choices(_CONSONANTS, k=6))  # surname code, then given-name code
    month = rng.randrange(12)
    day = rng.randint(1, calendar.monthrange(birth_year, month + 1)[1]) + (40 if female else 0)
    place = rng.choice(_pick(rng, _BIRTHPLACE_GROUPS))
    first15 = f"{name_codes}{birth_year % 100:02d}{MONTH_LETTERS[month]}{day:02d}{place}"
    code = first15 + check_character(first15)
    if omocodia:
        code = omocodic_variant(code, rng.randint(1, 3))
    return code


def _pick(rng: random.Random, groups: Sequence[tuple[float, _T]]) -> _T:
    point = rng.random() * sum(weight for weight, _ in groups)
    for weight, item in groups:
        point -= weight
        if point < 0:
            return item
    return groups[-1][1]


class _Weighted(Generic[_T]):
    """A fixed weighted choice, with cumulative weights computed once."""

    __slots__ = ("_cumulative", "_items", "_total")

    def __init__(self, items: Sequence[_T], weights: Sequence[float]) -> None:
        self._items = tuple(items)
        self._cumulative = tuple(itertools.accumulate(weights))
        self._total = self._cumulative[-1]

    def draw(self, rng: random.Random) -> _T:
        index = bisect.bisect(self._cumulative, rng.random() * self._total)
        return self._items[min(index, len(self._items) - 1)]


def quartiere_allocation(tier: Tier) -> dict[Quartiere, int]:
    """Exactly how many tenancies of each quartiere a full set of ``tier`` has.

    Proportional to :data:`TIER_QUARTIERE_WEIGHTS` by the largest-remainder method; the counts add up to
    :data:`TIER_TENANCIES`.
    """
    weights = TIER_QUARTIERE_WEIGHTS[tier]
    total = TIER_TENANCIES[tier]
    weight_sum = sum(weights.values())
    exact = {q: total * w / weight_sum for q, w in weights.items()}
    counts = {q: int(share) for q, share in exact.items()}
    missing = total - sum(counts.values())
    for q in sorted(exact, key=lambda q: (counts[q] - exact[q], QUARTIERI.index(q)))[:missing]:
        counts[q] += 1
    return counts


def generate_tenants(tier: Tier, seed: int, limit: int | None = None) -> Iterator[SyntheticTenant]:
    """The synthetic tenancies of ``tier`` for ``seed``, lazily, in a seed-determined order.

    A full set has :data:`TIER_TENANCIES` tenancies with quartieri exactly as
    :func:`quartiere_allocation`; any prefix is a random sample of it. ``limit`` stops early (``None`` for
    the full set) and never changes what is generated before it. Codici fiscali are unique per set even
    after :func:`~gateway.identity.codice_fiscale.canonical` (no two tenants share an omocodia family);
    contract and unit ids are unique too.
    """
    if tier not in TIER_TENANCIES:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIER_TENANCIES)}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    size = TIER_TENANCIES[tier] if limit is None else min(limit, TIER_TENANCIES[tier])
    return _generate(tier, seed, size)


def _generate(tier: Tier, seed: int, size: int) -> Iterator[SyntheticTenant]:
    rng = random.Random(seed)
    full = TIER_TENANCIES[tier]
    # Work for the full set happens up front, whatever the limit, so that a prefix is stable.
    slots: list[Quartiere] = [q for q, n in quartiere_allocation(tier).items() for _ in range(n)]
    rng.shuffle(slots)
    contracts = rng.sample(_CONTRACT_NUMBERS, full)
    units = rng.sample(_UNIT_NUMBERS, full)
    rent_bands = _Weighted(RENT_BANDS, _RENT_BAND_WEIGHTS)
    households = {band: _Weighted(HOUSEHOLD_TYPES, _HOUSEHOLD_WEIGHTS[band]) for band in RENT_BANDS}
    isee_bands = {band: _Weighted(ISEE_BANDS, _ISEE_WEIGHTS[band]) for band in RENT_BANDS}
    seen: set[str] = set()
    for index in range(size):
        rent_band = rent_bands.draw(rng)
        household = households[rent_band].draw(rng)
        isee_band = isee_bands[rent_band].draw(rng)
        female = rng.random() < _FEMALE_PROBABILITY[household]
        birth_year = rng.randint(*_BIRTH_YEARS[household])
        omocodia = rng.random() < _OMOCODIA_PROBABILITY
        while True:
            cf = synthetic_codice_fiscale(rng, female=female, birth_year=birth_year, omocodia=omocodia)
            key = canonical(cf) if omocodia else cf  # a code without omocodia is its own canonical form
            if key not in seen:
                seen.add(key)
                break
        given_name = rng.choice(_FEMALE_NAMES if female else _MALE_NAMES)
        family_name = rng.choice(_FAMILY_NAMES)
        if rng.random() < _ARREARS_PROBABILITY[rent_band]:
            months = min(1 + int(rng.expovariate(1 / 4)), 36)
            low, high = _MONTHLY_RENT_EUR[rent_band]
            monthly_cents = rng.randint(low * 100, high * 100)
            arrears_cents = months * monthly_cents + rng.randint(0, months * 3_000)  # plus unpaid charges
        else:
            months = 0
            arrears_cents = 0
        yield SyntheticTenant(
            cf=cf,
            given_name=given_name,
            family_name=family_name,
            quartiere=slots[index],
            household_type=household,
            isee_band=isee_band,
            rent_band=rent_band,
            contract_id=f"ALER-C-{contracts[index]:08d}",
            unit_id=f"ALER-U-{units[index]:07d}",
            arrears_cents=arrears_cents,
            arrears_months=months,
        )
