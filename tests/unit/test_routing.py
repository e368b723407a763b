"""Message and correlation ids that hold a codice fiscale are refused wherever a partner's message is decoded
(the intake, the contract kit), since those ids are written to the audit log and status topics as they are
(privacy.md: no CF in any record)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.contracts.kit import check_message
from gateway.identity.codice_fiscale import contains_codice_fiscale
from gateway.identity.synthetic import generate_tenants
from gateway.policy import load_registry
from gateway.routing import DECODERS, screen_identifiers
from gateway.simulators import aler_arrears_message, comune_emergency
from schemas.errors import DecodeError

PERSON = next(t for t in generate_tenants("S", seed=5, limit=50) if t.arrears_cents > 0)


def test_contains_codice_fiscale_finds_one_inside_an_identifier_in_either_case() -> None:
    assert contains_codice_fiscale(f"MOR-{PERSON.cf}-2026")
    assert contains_codice_fiscale(f"x{PERSON.cf.lower()}")
    assert not contains_codice_fiscale(f"MOR-{PERSON.cf[:15]}-2026")  # a fragment is not a code
    assert not contains_codice_fiscale(PERSON.cf[:15] + ("A" if PERSON.cf[15] != "A" else "B"))  # bad check char
    assert not contains_codice_fiscale("ALER-M-0001")


@pytest.mark.parametrize("field", ["id_messaggio", "id_correlazione"])
def test_an_aler_message_whose_ids_hold_a_codice_fiscale_is_refused_without_echoing_it(field: str) -> None:
    message = aler_arrears_message(PERSON, "m-ok")
    message[field] = f"MOR-{PERSON.cf}"
    with pytest.raises(DecodeError) as refused:
        screen_identifiers(DECODERS["aler"](orjson.dumps(message), "application/json"))
    assert refused.value.kind == "contract"
    assert [p.rule for p in refused.value.problems] == ["personal-data-in-identifier"]
    assert PERSON.cf not in str([p.as_dict() for p in refused.value.problems])


def test_the_contract_kit_reports_the_same_problem() -> None:
    message = comune_emergency(PERSON.cf, f"EV-{PERSON.cf.lower()}")
    report = check_message("comune", orjson.dumps(message), "application/json", load_registry())
    assert not report.valid
    assert {p["rule"] for p in report.problems} == {"personal-data-in-identifier"}


def test_ordinary_ids_still_decode() -> None:
    [envelope] = screen_identifiers(DECODERS["aler"](orjson.dumps(aler_arrears_message(PERSON, "m-1")),
                                                      "application/json"))
    assert envelope.message_id == "m-1"


async def test_the_intake_refuses_it_before_anything_is_written(tmp_path: Path) -> None:
    from gateway.bootstrap import build
    from gateway.errors import ContractViolation
    from gateway.pipeline import Submission
    from gateway.settings import GatewaySettings

    gateway = build(GatewaySettings(data_dir=tmp_path), clients=())
    await gateway.start(workers=False)
    try:
        message = aler_arrears_message(PERSON, f"MOR-{PERSON.cf}")
        with pytest.raises(ContractViolation):
            await gateway.intake.submit(Submission(sender="aler", sender_role="system", raw=orjson.dumps(message),
                                                   content_type="application/json", request_id="r"))
        async with gateway.store.transaction() as tx:
            assert (await tx.audit_head()).size == 0
    finally:
        await gateway.stop()
