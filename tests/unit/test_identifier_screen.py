"""Issue 10 points 1-2: a person identifier hidden in a partner-chosen id (message, correlation or request id)
is found whatever its separators, letter case or check character, so it never reaches the append-only audit
log. Property tests over random valid codici fiscali; the end-to-end scans are in
``tests/integration/test_identifier_screen_e2e.py``."""

from __future__ import annotations

import random
import uuid

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contracts.kit import check_message
from gateway.identifiers import holds_personal_data, request_id_or_minted
from gateway.identity.codice_fiscale import contains_person_identifier, omocodic_variant
from gateway.identity.synthetic import generate_tenants, synthetic_codice_fiscale
from gateway.policy import load_registry
from gateway.routing import DECODERS, screen_identifiers
from gateway.simulators import aler_arrears_message
from schemas.errors import DecodeError

PERSON = next(t for t in generate_tenants("S", seed=5, limit=50) if t.arrears_cents > 0)
SEPARATORS = "-_.:/ +~|"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@st.composite
def disguised_codes(draw: st.DrawFn) -> str:
    """A valid codice fiscale (omocodia variants too) with separators, mixed case and maybe a wrong check
    character."""
    code = synthetic_codice_fiscale(random.Random(draw(st.integers(0, 2**32))))
    code = omocodic_variant(code, draw(st.integers(0, 7)))
    if draw(st.booleans()):
        code = code[:15] + draw(st.sampled_from([c for c in LETTERS if c != code[15]]))
    out = []
    for char in code:
        out.append(char.lower() if draw(st.booleans()) else char)
        if draw(st.integers(0, 3)) == 0:
            out.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


ids_around = st.tuples(st.sampled_from(["", "M-", "MOR_", "ref.", "x"]), st.sampled_from(["", "-1", "_2026", ".a"]))


@given(disguised_codes(), ids_around)
@settings(max_examples=300, deadline=None)
def test_every_disguise_of_a_codice_fiscale_is_found(code: str, around: tuple[str, str]) -> None:
    assert contains_person_identifier(around[0] + code + around[1])
    assert holds_personal_data(around[0] + code + around[1])


@given(disguised_codes(), ids_around, st.sampled_from(["id_messaggio", "id_correlazione"]))
@settings(max_examples=100, deadline=None)
def test_a_message_or_correlation_id_holding_one_is_refused(code: str, around: tuple[str, str], field: str) -> None:
    message = aler_arrears_message(PERSON, "m-ok")
    message[field] = around[0] + code + around[1]
    with pytest.raises(DecodeError) as refused:
        screen_identifiers(DECODERS["aler"](orjson.dumps(message), "application/json"))
    # refused by the contract (an id with characters it does not allow) or by the screen, never accepted
    assert refused.value.kind in ("contract", "malformed")
    assert code not in str([p.as_dict() for p in refused.value.problems])


@given(disguised_codes(), ids_around)
@settings(max_examples=100, deadline=None)
def test_a_request_id_holding_one_is_replaced_by_a_minted_one(code: str, around: tuple[str, str]) -> None:
    replaced = request_id_or_minted(around[0] + code + around[1])
    assert str(uuid.UUID(replaced)) == replaced


def test_stp_and_eni_codes_are_person_identifiers_too() -> None:
    assert holds_personal_data("req-stp-030-308-0000001")
    assert holds_personal_data("ENI0303080000001")


@pytest.mark.parametrize("ordinary", [
    "ALER-M-0001", "corr-ALER-M-0001", "req-e2e", str(uuid.UUID(int=0)), "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c",
    "stat-F6-2026-10", "MOR-2026-000123", "EV-comune-7781",
])
def test_ordinary_ids_are_kept(ordinary: str) -> None:
    assert not holds_personal_data(ordinary)
    assert request_id_or_minted(ordinary) == ordinary


def test_the_contract_kit_refuses_a_separated_code_with_a_wrong_check_character() -> None:
    code = PERSON.cf[:15] + ("A" if PERSON.cf[15] != "A" else "B")
    message = aler_arrears_message(PERSON, "-".join([code[:6], code[6:11], code[11:]]))
    report = check_message("aler", orjson.dumps(message), "application/json", load_registry())
    assert not report.valid
    assert {p["rule"] for p in report.problems} == {"personal-data-in-identifier"}


@pytest.mark.parametrize(("message_id", "correlation_id", "named"), [
    ("ref-{cf}", None, ["message id", "correlation id"]),  # no id_correlazione: the message id is both
    ("ref-{cf}", "ref-{cf}", ["message id", "correlation id"]),
    ("m-ok", "ref-{cf}", ["correlation id"]),
    ("ref-{cf}", "c-ok", ["message id"]),
])
def test_each_id_holding_a_code_is_named_also_when_both_ids_are_one(
        message_id: str, correlation_id: str | None, named: list[str]) -> None:
    message = aler_arrears_message(PERSON, message_id.format(cf=PERSON.cf.lower()))
    if correlation_id is None:
        del message["id_correlazione"]
    else:
        message["id_correlazione"] = correlation_id.format(cf=PERSON.cf.lower())
    with pytest.raises(DecodeError) as refused:
        screen_identifiers(DECODERS["aler"](orjson.dumps(message), "application/json"))
    assert [p.message.split(" of message")[0].removeprefix("the ") for p in refused.value.problems] == named
    assert {p.rule for p in refused.value.problems} == {"personal-data-in-identifier"}
