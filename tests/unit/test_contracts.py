"""Published contracts stay in step with the code, and real messages validate against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from adapters.aler import decode
from gateway.api import openapi_document
from gateway.contracts.publication import generate_contracts
from gateway.identity.synthetic import generate_tenants
from gateway.simulators import aler_arrears_message

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def test_checked_in_contracts_match_the_code() -> None:
    """Run ``gateway contracts generate`` when this fails, and review the diff as a contract change."""
    expected = generate_contracts(openapi_document)
    on_disk = {str(p.relative_to(CONTRACTS)): p.read_text(encoding="utf-8")
               for p in CONTRACTS.rglob("*.json") if "examples" not in p.relative_to(CONTRACTS).parts}
    assert sorted(on_disk) == sorted(expected)
    drifted = [path for path, text in expected.items() if on_disk[path] != text]
    assert drifted == []


def test_every_contract_is_a_valid_json_schema() -> None:
    for path in CONTRACTS.rglob("*.schema.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_simulated_aler_messages_validate_against_the_published_schema() -> None:
    schema = json.loads((CONTRACTS / "aler/segnalazione-morosita.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for i, tenant in enumerate(generate_tenants("S", seed=3, limit=50)):
        message = orjson.loads(orjson.dumps(aler_arrears_message(tenant, f"m{i}")))
        assert list(validator.iter_errors(message)) == []
        assert decode(orjson.dumps(message))


def test_the_schema_rejects_what_the_adapter_rejects_for_unknown_fields() -> None:
    schema = json.loads((CONTRACTS / "aler/segnalazione-morosita.schema.json").read_text(encoding="utf-8"))
    tenant = next(generate_tenants("S", seed=3, limit=1))
    message = orjson.loads(orjson.dumps(aler_arrears_message(tenant, "m")))
    message["nome"] = "not allowed"
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(message))
    assert errors and errors[0].validator == "additionalProperties"
