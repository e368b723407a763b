"""The regular expressions of the published schemas (:mod:`adapters._patterns`) match what the decoders read:
code-list spellings exactly as :meth:`CodeList.resolve` resolves them, codici fiscali and STP/ENI codes as
:func:`classify` takes them (layout only), numeric ranges without leading zeros."""

from __future__ import annotations

import random
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters._patterns import anchored, decimal_pattern, flag_letters, int_range, person_code, spelling
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, omocodic_variant
from gateway.identity.synthetic import synthetic_codice_fiscale
from schemas.codelists import load_codelist

CODELISTS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "schemas" / "codelists").glob("*.yaml"))


def _resolves(codelist: str, value: str) -> bool:
    return load_codelist(codelist).resolve(value) is not None


@st.composite
def written_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(code list, a spelling of one of its codes as someone might type it: any case, spacing and dots)."""
    codelist = draw(st.sampled_from(CODELISTS))
    codes = load_codelist(codelist)
    text = draw(st.sampled_from(sorted({*codes.labels_it, *codes.labels_it.values(), *codes.aliases})))
    spaces = st.sampled_from([" ", "  ", "\t", " \u00a0"])
    words = []
    for word in text.replace(".", ". ").split():
        words.append("".join(c.upper() if draw(st.booleans()) else c.lower() for c in word))
    joined = ""
    for k, word in enumerate(words):
        if k:
            joined += "" if words[k - 1].endswith(".") and draw(st.booleans()) else draw(spaces)
        joined += word
    return codelist, draw(st.sampled_from(["", " "])) + joined + draw(st.sampled_from(["", "  "]))


@settings(max_examples=400, deadline=None)
@given(written_spellings())
def test_every_spelling_the_code_list_resolves_matches_its_pattern(case: tuple[str, str]) -> None:
    codelist, value = case
    assert _resolves(codelist, value)
    assert re.fullmatch(anchored(spelling(codelist)), value)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CODELISTS), st.text(alphabet=st.sampled_from("aeiolnrst -.SAN"), max_size=12) | st.text())
def test_what_the_pattern_matches_the_code_list_resolves(codelist: str, value: str) -> None:
    if re.fullmatch(anchored(spelling(codelist)), value):
        assert _resolves(codelist, value)


@pytest.mark.parametrize("codelist", CODELISTS)
def test_a_subset_of_codes_matches_only_their_spellings(codelist: str) -> None:
    codes = load_codelist(codelist)
    first = sorted(codes.labels_it)[0]
    pattern = anchored(spelling(codelist, [first]))
    for alias, code in codes.aliases.items():
        assert bool(re.fullmatch(pattern, alias)) == (code == first), alias


def test_person_codes_match_as_classify_takes_them() -> None:
    rng = random.Random(7)
    pattern = re.compile(anchored(person_code()))
    for _ in range(300):
        cf = synthetic_codice_fiscale(rng, omocodia=rng.random() < 0.3)
        for written in (cf, cf.lower(), f" {cf} ", omocodic_variant(cf, 1)):
            assert pattern.fullmatch(written), written
    for code in ("STP0303080000001", "eni0303080000002"):
        assert pattern.fullmatch(code)
    for _ in range(3000):
        value = "".join(rng.choice("ABCDEHLMPRSTZ0123456789stp ") for _ in range(rng.choice((15, 16, 17))))
        try:
            classify(value)
        except InvalidPersonIdentifier:
            continue
        assert pattern.fullmatch(value), value


@pytest.mark.parametrize(("low", "high"), [(0, 0), (0, 9), (1, 9), (0, 600), (5, 123), (99, 100), (0, 9999),
                                           (123, 4567)])
def test_int_range_matches_exactly_the_numbers_in_range_without_leading_zeros(low: int, high: int) -> None:
    pattern = re.compile(anchored(int_range(low, high)))
    for number in range(0, 2 * high + 20):
        assert bool(pattern.fullmatch(str(number))) == (low <= number <= high), number
        assert not pattern.fullmatch(f"0{number}")


def test_decimal_pattern_takes_amounts_up_to_the_maximum_with_at_most_the_places() -> None:
    pattern = re.compile(anchored(decimal_pattern(Decimal(1000), 2)))
    positive = re.compile(anchored(decimal_pattern(Decimal(1000), 2, positive=True)))
    for text, ok in [("0", True), ("0,00", True), ("999.99", True), ("1000", True), ("1000.00", True),
                     ("1000.01", False), ("12.345", False), ("1.000", False), ("01", False), ("-1", False),
                     ("1e3", False), (".5", False), ("5.", False)]:
        assert bool(pattern.fullmatch(text)) is ok, text
    assert not positive.fullmatch("0") and not positive.fullmatch("0.00") and positive.fullmatch("0.01")


def test_flag_letters_take_each_letter_once_in_any_order_and_case() -> None:
    pattern = re.compile(anchored(flag_letters({"M"}, {"D"}, none="-")))
    assert [text for text in ("M", "m", "MD", "dm", "D", "-", "", "MM", "MDD") if pattern.fullmatch(text)] == [
        "M", "m", "MD", "dm"]
    none = re.compile(anchored(flag_letters(set(), {"D"}, none="-")))
    assert [text for text in ("-", "", "D", "d", "M", "--") if none.fullmatch(text)] == ["-", "", "D", "d"]
