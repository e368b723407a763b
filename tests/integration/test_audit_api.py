"""The audit API for privacy officers: signed checkpoints, inclusion and consistency proofs, verifier keys, and
FHIR R4 AuditEvent export (T-12 on records the pipeline wrote), on both pairs of backends.

Every proof the API serves is checked with the verifiers of :mod:`gateway.audit.merkle` and
:mod:`gateway.audit.checkpoint` against a checkpoint opened with the keys the API itself publishes, the way
a partner's privacy officer acting as a witness would check them. The module adds a privacy-officer client
(scopes ``audit:verify`` and ``privacy:report``) to the shared partner clients.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from gateway.audit.checkpoint import VerifierKey, open_checkpoint, verify_checkpoint_consistency
from gateway.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.settings import GatewaySettings
from gateway.simulators import aler_arrears_message, fhir_consent
from tests.conftest import ALL_SCOPES, QUIET_CHECKPOINTER, Backends, bearer

PROBLEM_JSON = "application/problem+json"
ENDPOINTS = ("/v1/audit/checkpoint", "/v1/audit/proof/inclusion?index=0", "/v1/audit/proof/consistency?first=0",
             "/v1/audit/keys", "/v1/audit/records/0/fhir")


@pytest.fixture(scope="module")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    """The shared partner clients plus a privacy officer, who may read the audit log and nothing else."""
    made = [PartnerClient(f"{org}-test", secret_hash, org, "system", frozenset(ALL_SCOPES))
            for org in ("aler", "asst", "comune", "fwa")]
    made.append(PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer",
                              frozenset({"audit:verify", "privacy:report"})))
    return tuple(made)


pytestmark = QUIET_CHECKPOINTER


@pytest.fixture
async def dpo(http: httpx.AsyncClient) -> dict[str, str]:
    return await bearer(http, "dpo-test")


def hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


async def activity(http: httpx.AsyncClient, tenant: SyntheticTenant, message_id: str) -> None:
    """A consent recorded, a referral permitted and one denied: consent-change, decision, disclosure records."""
    aler = await bearer(http, "aler-test")
    response = await http.post("/v1/consents", json=fhir_consent(tenant.cf), headers=aler)
    assert response.status_code == 201, response.text
    for suffix, purpose in (("ok", "microcredit-assessment"), ("no-purpose", None)):
        response = await http.post("/v1/partners/aler/messages", headers=aler,
                                   json=aler_arrears_message(tenant, f"{message_id}-{suffix}", purpose=purpose))
        assert response.status_code == 202, response.text


async def published_keys(http: httpx.AsyncClient, dpo: dict[str, str]) -> list[VerifierKey]:
    response = await http.get("/v1/audit/keys", headers=dpo)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return [VerifierKey.parse(line) for line in response.text.splitlines()]


def tenants(count: int) -> list[SyntheticTenant]:
    return [t for t in generate_tenants("S", seed=11, limit=50) if t.arrears_cents > 0][:count]


# --- access ------------------------------------------------------------------------------------------------------


async def test_every_audit_endpoint_needs_the_privacy_audit_scope(http: httpx.AsyncClient) -> None:
    partner = await bearer(http, "aler-test")
    for path in ENDPOINTS:
        anonymous = await http.get(path)
        assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith(PROBLEM_JSON), path
        refused = await http.get(path, headers=partner)
        assert refused.status_code == 403, (path, refused.text)


# --- checkpoints and keys ------------------------------------------------------------------------------------------


async def test_the_latest_signed_checkpoint_opens_with_the_published_keys(
    http: httpx.AsyncClient, gateway: Gateway, dpo: dict[str, str]
) -> None:
    missing = await http.get("/v1/audit/checkpoint", headers=dpo)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM_JSON)

    [person] = tenants(1)
    await activity(http, person, "m-cp")
    signed = await gateway.checkpointer.checkpoint_now()
    async with gateway.store.transaction() as tx:
        head = await tx.audit_head()  # before the reads below, which are audited in their turn
    response = await http.get("/v1/audit/checkpoint", headers=dpo)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == signed.note
    checkpoint = open_checkpoint(response.text, await published_keys(http, dpo), origin=gateway.settings.audit_origin)
    assert (checkpoint.tree_size, checkpoint.root_hash) == (head.size, head.root())
    assert head.size >= 4  # consent change, decisions and the disclosure


async def test_keys_are_served_as_vkey_lines_or_json_retired_ones_included(
    http: httpx.AsyncClient, gateway: Gateway, dpo: dict[str, str]
) -> None:
    await gateway.checkpointer.checkpoint_now()  # registers the first key
    old = gateway.checkpointer.signing_keys()[0]
    new = await gateway.checkpointer.rotate_key(overlap=False)
    assert await published_keys(http, dpo) == [old.verifier, new.verifier]
    response = await http.get("/v1/audit/keys", headers={**dpo, "Accept": "application/json"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert [k["vkey"] for k in body] == [old.verifier.to_text(), new.verifier.to_text()]
    assert body[0]["retired_at"] is not None and body[1]["retired_at"] is None
    assert body[1]["key_id"] == new.key_id.hex() and body[1]["key_name"] == gateway.settings.audit_origin


# --- proofs -------------------------------------------------------------------------------------------------------


async def test_inclusion_proofs_of_every_record_lead_to_the_signed_root(
    http: httpx.AsyncClient, gateway: Gateway, dpo: dict[str, str]
) -> None:
    first, second = tenants(2)
    await activity(http, first, "m-inc-1")
    signed = await gateway.checkpointer.checkpoint_now()
    await activity(http, second, "m-inc-2")  # records beyond the latest checkpoint
    checkpoint = open_checkpoint(signed.note, await published_keys(http, dpo))
    async with gateway.store.transaction() as tx:
        entries = await tx.audit_entries(0, 1000)
    assert len(entries) > checkpoint.tree_size

    for entry in entries:
        index = int(entry["idx"])
        response = await http.get(f"/v1/audit/proof/inclusion?index={index}", headers=dpo)
        assert response.status_code == 200, response.text
        proof = response.json()
        assert proof["leaf_hash"] == leaf_hash(entry["record"].encode()).hex()
        verify_inclusion(bytes.fromhex(proof["leaf_hash"]), index, proof["tree_size"], hexes(proof["proof"]),
                         bytes.fromhex(proof["root_hash"]))
        if index < checkpoint.tree_size:  # by default, proven against the latest signed checkpoint
            assert proof["tree_size"] == checkpoint.tree_size and proof["checkpoint"] == signed.note
            assert bytes.fromhex(proof["root_hash"]) == checkpoint.root_hash
        else:  # newer records: against the current log (grown by the audited reads), not yet signed
            assert proof["tree_size"] >= len(entries) and proof["checkpoint"] is None

    small = (await http.get("/v1/audit/proof/inclusion?index=0&tree_size=1", headers=dpo)).json()
    assert small["proof"] == [] and small["root_hash"] == small["leaf_hash"]

    async with gateway.store.transaction() as tx:
        size = (await tx.audit_head()).size
    beyond = await http.get(f"/v1/audit/proof/inclusion?index=2&tree_size={size + 1}", headers=dpo)
    assert beyond.status_code == 404 and beyond.headers["content-type"].startswith(PROBLEM_JSON)
    outside = await http.get("/v1/audit/proof/inclusion?index=3&tree_size=3", headers=dpo)
    assert outside.status_code == 400 and outside.json()["problems"][0]["pointer"] == "/query/index"
    negative = await http.get("/v1/audit/proof/inclusion?index=-1", headers=dpo)
    assert negative.status_code == 422


async def test_consistency_proofs_link_one_signed_checkpoint_to_the_next(
    http: httpx.AsyncClient, gateway: Gateway, dpo: dict[str, str]
) -> None:
    first, second = tenants(2)
    await activity(http, first, "m-con-1")
    older = await gateway.checkpointer.checkpoint_now()
    await activity(http, second, "m-con-2")
    newer = await gateway.checkpointer.checkpoint_now()
    keys = await published_keys(http, dpo)
    witnessed, latest = open_checkpoint(older.note, keys), open_checkpoint(newer.note, keys)

    response = await http.get(f"/v1/audit/proof/consistency?first={witnessed.tree_size}", headers=dpo)
    assert response.status_code == 200, response.text
    proof = response.json()
    assert (proof["first"], proof["second"]) == (witnessed.tree_size, latest.tree_size)
    assert (proof["first_checkpoint"], proof["second_checkpoint"]) == (older.note, newer.note)
    assert bytes.fromhex(proof["first_root"]) == witnessed.root_hash
    assert bytes.fromhex(proof["second_root"]) == latest.root_hash
    verify_checkpoint_consistency(witnessed, latest, hexes(proof["proof"]))

    for first_size in range(latest.tree_size + 1):  # every prefix, against every size up to the head
        for second_size in (first_size, latest.tree_size):
            response = await http.get(
                f"/v1/audit/proof/consistency?first={first_size}&second={second_size}", headers=dpo)
            assert response.status_code == 200, response.text
            body = response.json()
            verify_consistency(first_size, second_size, bytes.fromhex(body["first_root"]),
                               bytes.fromhex(body["second_root"]), hexes(body["proof"]))

    backwards = await http.get(f"/v1/audit/proof/consistency?first={latest.tree_size}&second=1", headers=dpo)
    assert backwards.status_code == 400 and backwards.json()["problems"][0]["pointer"] == "/query/first"


# --- FHIR export (T-12 on pipeline records) -------------------------------------------------------------------


async def test_T12_pipeline_records_export_as_valid_audit_events_and_each_read_is_audited(
    http: httpx.AsyncClient, gateway: Gateway, dpo: dict[str, str]
) -> None:
    [person] = tenants(1)
    await activity(http, person, "m-fhir")
    async with gateway.store.transaction() as tx:
        entries = await tx.audit_entries(0, 1000)
    kinds = {json.loads(e["record"])["event_type"] for e in entries}
    assert {"consent-change", "decision", "disclosure"} <= kinds

    for entry in entries:
        index = int(entry["idx"])
        record = json.loads(entry["record"])
        response = await http.get(f"/v1/audit/records/{index}/fhir", headers=dpo)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        event = response.json()
        AuditEvent.model_validate(event)
        assert event["id"] == record["record_id"]
        assert person.cf not in response.text and person.family_name not in response.text

    async with gateway.store.transaction() as tx:
        after = await tx.audit_entries(len(entries), 1000)
    reads = [json.loads(e["record"]) for e in after]
    assert [r["queried_ref"] for r in reads] == [f"audit-log/{i}" for i in range(len(entries))]
    assert {(r["event_type"], r["client_id"], r["purpose"]) for r in reads} == {
        ("privacy-query", "dpo-test", "privacy-oversight")}
    subject_refs = {json.loads(e["record"]).get("subject_ref") for e in entries}
    assert {r.get("subject_ref") for r in reads} == subject_refs  # the person's own report will show the reads

    missing = await http.get("/v1/audit/records/100000/fhir", headers=dpo)
    assert missing.status_code == 404


# --- the background checkpointer of a running gateway ----------------------------------------------------------


async def test_a_running_gateway_signs_checkpoints_on_its_own(
    backends: Backends, settings_for: Callable[[Backends], object], clients: tuple[PartnerClient, ...]
) -> None:
    settings: GatewaySettings = await settings_for(backends)  # type: ignore[misc]
    settings = settings.model_copy(update={"audit_checkpoint_every_records": 3,
                                           "audit_checkpoint_every_seconds": 0.2})
    gw = build(settings, clients=clients)
    await gw.start()
    try:
        [person] = tenants(1)
        await gw.consents.record(fhir_consent(person.cf), "aler", "aler-test", "req-1")
        latest: Any = None
        for _ in range(200):
            async with gw.store.transaction() as tx:
                latest = await tx.latest_audit_checkpoint()
            if latest is not None:
                break
            await asyncio.sleep(0.05)
        assert latest is not None and latest.tree_size == 1
        raw = base64.b64decode(latest.note.splitlines()[2])
        async with gw.store.transaction() as tx:
            assert raw == (await tx.audit_head()).root()
    finally:
        await gw.stop()
