"""Tests for :mod:`gateway.identity.synthetic`: determinism, tier sizes, distributions, identifiers."""

from __future__ import annotations

import random
import re
from collections import Counter
from functools import cache

import pytest

from gateway.identity.codice_fiscale import canonical, is_omocodic, is_valid
from gateway.identity.synthetic import (
    HOUSEHOLD_TYPES,
    ISEE_BANDS,
    QUARTIERE_UNITS,
    QUARTIERI,
    RENT_BANDS,
    TIER_QUARTIERE_WEIGHTS,
    TIER_TENANCIES,
    SyntheticTenant,
    Tier,
    generate_tenants,
    quartiere_allocation,
    synthetic_codice_fiscale,
)

_CONTRACT_RE = re.compile(r"ALER-C-[0-9]{8}")
_UNIT_RE = re.compile(r"ALER-U-[0-9]{7}")


@cache
def _full_set(tier: Tier, seed: int) -> tuple[SyntheticTenant, ...]:
    return tuple(generate_tenants(tier, seed))


def test_tier_sizes_match_the_domain_volumes() -> None:
    assert TIER_TENANCIES == {"S": 11_000, "M": 16_000, "L": 35_000, "XL": 150_000}


@pytest.mark.parametrize("tier", ["S", "M"])
def test_full_set_has_the_tier_count(tier: Tier) -> None:
    assert len(_full_set(tier, 11)) == TIER_TENANCIES[tier]


@pytest.mark.parametrize("tier", ["S", "M", "L", "XL"])
def test_allocation_adds_up_to_the_tier(tier: Tier) -> None:
    allocation = quartiere_allocation(tier)
    assert sum(allocation.values()) == TIER_TENANCIES[tier]
    assert set(allocation) <= set(QUARTIERI)
    for quartiere in QUARTIERE_UNITS:
        assert allocation[quartiere] > 0


def test_larger_tiers_add_quartieri() -> None:
    assert set(TIER_QUARTIERE_WEIGHTS["S"]) == {"san-siro", "gratosoglio", "molise-calvairate", "mazzini"}
    assert set(TIER_QUARTIERE_WEIGHTS["M"]) == set(TIER_QUARTIERE_WEIGHTS["S"]) | {"lorenteggio", "salomone"}
    assert "other-milano" in TIER_QUARTIERE_WEIGHTS["L"]
    assert "other-lombardia" in TIER_QUARTIERE_WEIGHTS["XL"]
    # the pilot quartieri keep their unit counts in M, L and XL
    for tier in ("M", "L", "XL"):
        allocation = quartiere_allocation(tier)
        for quartiere, units in QUARTIERE_UNITS.items():
            assert allocation[quartiere] == units


def test_limit_truncates_and_is_capped_at_the_tier() -> None:
    assert list(generate_tenants("S", 1, limit=0)) == []
    assert len(list(generate_tenants("S", 1, limit=25))) == 25
    assert len(list(generate_tenants("S", 1, limit=10**9))) == TIER_TENANCIES["S"]


def test_bad_arguments_fail_at_call_time() -> None:
    with pytest.raises(ValueError, match="tier"):
        generate_tenants("XXL", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        generate_tenants("S", 1, limit=-1)


# --- determinism ---------------------------------------------------------------------------------------


def test_same_seed_same_tenants() -> None:
    assert list(generate_tenants("S", 42, limit=500)) == list(generate_tenants("S", 42, limit=500))
    assert list(generate_tenants("M", 42, limit=50)) == list(generate_tenants("M", 42, limit=50))


def test_different_seed_different_tenants() -> None:
    first = list(generate_tenants("S", 1, limit=200))
    second = list(generate_tenants("S", 2, limit=200))
    assert {t.cf for t in first}.isdisjoint({t.cf for t in second})


def test_limit_gives_a_prefix_of_the_full_sequence() -> None:
    full = _full_set("S", 11)
    assert tuple(generate_tenants("S", 11, limit=300)) == full[:300]


def test_synthetic_codice_fiscale_is_deterministic() -> None:
    first = [synthetic_codice_fiscale(random.Random(5)) for _ in range(3)]
    assert len(set(first)) == 1
    assert synthetic_codice_fiscale(random.Random(5)) != synthetic_codice_fiscale(random.Random(6))


# --- distributions -------------------------------------------------------------------------------------


def test_full_set_quartieri_are_exactly_the_allocation() -> None:
    counts = Counter(t.quartiere for t in _full_set("S", 11))
    assert counts == quartiere_allocation("S")


@pytest.mark.parametrize("tier", ["S", "M"])
def test_full_set_quartieri_proportional_to_the_units_table(tier: Tier) -> None:
    tenants = _full_set(tier, 11)
    counts = Counter(t.quartiere for t in tenants)
    weights = TIER_QUARTIERE_WEIGHTS[tier]
    total_weight = sum(weights.values())
    for quartiere, weight in weights.items():
        assert counts[quartiere] / len(tenants) == pytest.approx(weight / total_weight, abs=0.001)


def test_a_prefix_is_roughly_proportional() -> None:
    sample = list(generate_tenants("S", 3, limit=3_000))
    counts = Counter(t.quartiere for t in sample)
    total_units = sum(QUARTIERE_UNITS.values())
    for quartiere, units in QUARTIERE_UNITS.items():
        assert counts[quartiere] / len(sample) == pytest.approx(units / total_units, abs=0.03)


def test_protection_band_households() -> None:
    tenants = _full_set("S", 11)
    protection = [t for t in tenants if t.rent_band == "protezione"]
    # about 9,000 of about 11,000 households are in the social-protection band
    assert 8_400 <= len(protection) <= 9_600
    types = Counter(t.household_type for t in protection)
    single = types["elderly-single"] + types["single-adult"]
    assert single / len(protection) == pytest.approx(0.40, abs=0.03)
    assert types["elderly-single"] > 2 * types["single-adult"]


def test_codes_are_from_the_code_lists() -> None:
    tenants = _full_set("S", 11)
    assert {t.household_type for t in tenants} == set(HOUSEHOLD_TYPES)
    assert {t.rent_band for t in tenants} == set(RENT_BANDS)
    assert {t.isee_band for t in tenants} <= set(ISEE_BANDS)
    assert {t.quartiere for t in tenants} <= set(QUARTIERI)


def test_arrears_are_consistent() -> None:
    tenants = _full_set("S", 11)
    for t in tenants:
        assert (t.arrears_months == 0) == (t.arrears_cents == 0)
        assert 0 <= t.arrears_months <= 36
        assert t.arrears_cents >= 0
    with_arrears = sum(1 for t in tenants if t.arrears_months)
    assert 0.1 < with_arrears / len(tenants) < 0.5


# --- identifiers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["S", "M"])
def test_all_codici_fiscali_valid_and_unique(tier: Tier) -> None:
    tenants = _full_set(tier, 11)
    assert all(is_valid(t.cf) for t in tenants)
    assert len({t.cf for t in tenants}) == len(tenants)
    assert len({canonical(t.cf) for t in tenants}) == len(tenants)


def test_some_codici_fiscali_are_omocodia_variants() -> None:
    omocodic = sum(1 for t in _full_set("S", 11) if is_omocodic(t.cf))
    assert 10 <= omocodic <= 150  # about 0.5% of 11,000


def test_contract_and_unit_ids_are_well_formed_and_unique() -> None:
    tenants = _full_set("S", 11)
    assert all(_CONTRACT_RE.fullmatch(t.contract_id) for t in tenants)
    assert all(_UNIT_RE.fullmatch(t.unit_id) for t in tenants)
    assert len({t.contract_id for t in tenants}) == len(tenants)
    assert len({t.unit_id for t in tenants}) == len(tenants)


def test_tenants_are_frozen() -> None:
    tenant = next(generate_tenants("S", 1))
    with pytest.raises(AttributeError):
        tenant.cf = "X"  # type: ignore[misc]
