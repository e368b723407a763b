"""Dead-letter re-drive (issue 9 point 13) on both pairs of backends (embedded bus + SQLite, Kafka + PostgreSQL).

A message is dead-lettered because the gateway's code list did not know one of its codes yet (the ALER decoder
is swapped for one that refuses it, as an out-of-date code list would); once the list is "updated" (the real
decoder back), a replay reads the record back from ``in.aler`` at its coordinates, decides it once and forwards
it; a second replay decides nothing; each replay is audited with who asked. A dead-letter entry whose source
record is gone is said to be gone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import pytest

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.pipeline.redrive import DeadLetter, DeadLetterNotFound, Redrive
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem
from tests.conftest import ALL_SCOPES, bearer
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, record_consent, tenant
from tests.kafka_access import login_env

DEADLINE_S = 60.0


def redrive(gateway: Gateway) -> Redrive:
    return Redrive(gateway.bus, gateway.intake, gateway.settings.topics, sorted(gateway.intake.decoders),
                   gateway.settings.instance_id)


async def dead_letters(gateway: Gateway, count: int) -> list[DeadLetter]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        entries = await redrive(gateway).entries("aler")
        if len(entries) >= count:
            return entries
        assert time.monotonic() < deadline, f"{len(entries)} of {count} dead letters"
        await asyncio.sleep(0.2)


def decisions_per_message(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        if record["event_type"] == "decision":
            for message_id in record["message_ids"]:
                counts[message_id] = counts.get(message_id, 0) + 1
    return counts


async def test_a_dead_letter_replayed_after_its_cause_is_fixed_is_decided_once_and_audited(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    person = tenant(21)
    await record_consent(gateway, person.cf)
    from gateway.simulators import aler_arrears_message

    message = aler_arrears_message(person, "m-redrive")
    current = gateway.intake.decoders["aler"]

    def outdated_code_list(raw: bytes, content_type: str) -> list[Envelope]:
        raise DecodeError("contract", "a code is not in the gateway's code list yet",
                          [FieldProblem("/quartiere", "code-list", "not in the code list")])

    monkeypatch.setitem(gateway.intake.decoders, "aler", outdated_code_list)  # type: ignore[index]
    await gateway.bus.publish([OutgoingRecord(topic=gateway.settings.topics.name("in", "aler"),
                                              value=orjson.dumps(message),
                                              headers=(("message-id", b"m-redrive"),))])
    [entry] = await dead_letters(gateway, 1)
    assert entry.reason == "contract-violation"
    assert entry.message_id == "m-redrive"
    assert entry.source is not None and entry.source.topic == gateway.settings.topics.name("in", "aler")
    assert (await redrive(gateway).entry(entry.id)) == entry
    assert person.cf not in orjson.dumps(entry.as_dict()).decode()

    still = await redrive(gateway).replay(entry.id, "cli:operator-1")
    assert still.outcome == "still-invalid"
    assert decisions_per_message(await audit_records(gateway)).get("m-redrive") is None

    monkeypatch.setitem(gateway.intake.decoders, "aler", current)  # type: ignore[index]  # the list is updated
    dry = await redrive(gateway).replay(entry.id, "cli:operator-1", dry_run=True)
    assert (dry.outcome, dry.message_ids) == ("would-decide", ("m-redrive",))

    first = await redrive(gateway).replay(entry.id, "cli:operator-1")
    assert (first.outcome, first.states) == ("decided", {"m-redrive": "forwarded"})
    second = await redrive(gateway).replay(entry.id, "admin:operator-2")
    assert (second.outcome, second.states) == ("already-decided", {"m-redrive": "forwarded"})
    assert (await redrive(gateway).replay(entry.id, "cli:operator-1", dry_run=True)).outcome == "already-decided"

    referrals = await read_until(gateway, "out", "fwa", 1, settle_s=1.5)
    assert [r.header("correlation-id") for r in referrals] == ["corr-m-redrive"]
    records = await audit_records(gateway)
    assert decisions_per_message(records)["m-redrive"] == 1
    replays = [r for r in records if r["event_type"] == "dead-letter-replay"]
    assert [(r["client_id"], r["reason"], r["outcome"], r["queried_ref"]) for r in replays] == [
        ("cli:operator-1", "still-invalid", "failure", entry.id),
        ("cli:operator-1", "decided", "success", entry.id),
        ("admin:operator-2", "already-decided", "success", entry.id),
    ]
    assert all(r["kafka"] == entry.source.model_dump() for r in replays)
    assert person.cf not in orjson.dumps(records).decode()


async def test_a_dead_letter_whose_source_is_gone_says_so_and_unknown_ids_are_refused(gateway: Gateway) -> None:
    topics = gateway.settings.topics
    entry = {"reason": "contract-violation", "title": "Contract violation", "detail": "x", "problems": [],
             "source": {"topic": topics.name("in", "aler"), "partition": 0, "offset": 10**9},
             "message_id": "m-gone", "request_id": "req-1", "at": "2026-12-01T00:00:00+00:00"}
    await gateway.bus.publish([OutgoingRecord(topic=topics.name("dlq", "aler"), value=orjson.dumps(entry))])
    [dead] = await dead_letters(gateway, 1)
    result = await redrive(gateway).replay(dead.id, "cli:operator-1")
    assert result.outcome == "source-gone"
    assert result.detail is not None and "no longer holds offset 1000000000" in result.detail
    [audited] = [r for r in await audit_records(gateway) if r["event_type"] == "dead-letter-replay"]
    assert (audited["reason"], audited["outcome"]) == ("source-gone", "failure")

    for wrong in ("aler:0:999999", "nobody:0:0", "not-an-id"):
        with pytest.raises(DeadLetterNotFound):
            await redrive(gateway).entry(wrong)


def cli(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` in a fresh process on the same store, bus, topics and keys as ``gateway``."""
    s = gateway.settings
    env = {**os.environ, "GATEWAY_DATA_DIR": str(s.data_dir), "GATEWAY_BUS": s.bus,
           "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "GATEWAY_TOPICS__PREFIX": s.topics.prefix,
           "GATEWAY_TOPICS__PARTITIONS": str(s.topics.partitions), "COLUMNS": "200", **login_env(s)}
    if s.database_url:
        env["GATEWAY_DATABASE_URL"] = s.database_url
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


async def test_the_dlq_commands_list_show_and_replay_with_the_requester_audited(gateway: Gateway) -> None:
    person = tenant(22)
    from gateway.simulators import aler_arrears_message

    topics = gateway.settings.topics
    await gateway.bus.publish([OutgoingRecord(topic=topics.name("in", "aler"),
                                              value=orjson.dumps(aler_arrears_message(person, "m-cli")))])
    source = None
    deadline = time.monotonic() + DEADLINE_S
    while source is None:  # the running consumer decides it (denied: no consent); find where it landed
        assert time.monotonic() < deadline
        for partition in await gateway.bus.partitions(topics.name("in", "aler")):
            for record in await gateway.bus.read(topics.name("in", "aler"), partition, 0):
                source = record
        await asyncio.sleep(0.1)
    entry = {"reason": "internal-error", "title": "Internal error", "detail": "the gateway failed", "problems": [],
             "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset},
             "message_id": "m-cli", "request_id": "req-cli", "at": "2026-12-01T00:00:00+00:00"}
    await gateway.bus.publish([OutgoingRecord(topic=topics.name("dlq", "aler"), value=orjson.dumps(entry))])
    [dead] = await dead_letters(gateway, 1)

    listed = await asyncio.to_thread(cli, gateway, "dlq", "list", "--partner", "aler", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [orjson.loads(line)["id"] for line in listed.stdout.splitlines()] == [dead.id]
    shown = await asyncio.to_thread(cli, gateway, "dlq", "show", dead.id)
    assert orjson.loads(shown.stdout)["source"]["offset"] == source.offset
    replayed = await asyncio.to_thread(cli, gateway, "dlq", "replay", dead.id, "--by", "cli:tester")
    assert replayed.returncode == 0, replayed.stderr
    assert f"{dead.id}: already-decided (m-cli: denied)" in replayed.stdout
    missing = await asyncio.to_thread(cli, gateway, "dlq", "show", "aler:0:424242")
    assert missing.returncode == 2 and "no dead-letter entry aler:0:424242" in missing.stderr
    assert person.cf not in listed.stdout + shown.stdout + replayed.stdout + replayed.stderr

    records = await audit_records(gateway)
    assert decisions_per_message(records)["m-cli"] == 1
    [audited] = [r for r in records if r["event_type"] == "dead-letter-replay"]
    assert (audited["client_id"], audited["reason"]) == ("cli:tester", "already-decided")


@pytest.fixture
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    """The shared partner clients plus an operator allowed to re-drive dead letters."""
    made = [PartnerClient(f"{org}-test", secret_hash, org, "system", frozenset(ALL_SCOPES))
            for org in ("aler", "asst", "comune", "fwa")]
    made.append(PartnerClient("ops-test", secret_hash, "gateway-ops", "operator", frozenset({"admin:dlq"})))
    return tuple(made)


async def test_the_admin_route_replays_with_the_calling_client_audited_and_answers_problems(
        gateway: Gateway, http: httpx.AsyncClient) -> None:
    topics = gateway.settings.topics
    entry = {"reason": "contract-violation", "title": "Contract violation", "detail": "x", "problems": [],
             "source": {"topic": topics.name("in", "aler"), "partition": 0, "offset": 10**9},
             "message_id": "m-http", "request_id": "req-1", "at": "2026-12-01T00:00:00+00:00"}
    await gateway.bus.publish([OutgoingRecord(topic=topics.name("dlq", "aler"), value=orjson.dumps(entry))])
    [dead] = await dead_letters(gateway, 1)
    ops = await bearer(http, "ops-test")

    listed = await http.get("/v1/admin/dlq", params={"partner": "aler"}, headers=ops)
    assert listed.status_code == 200 and [e["id"] for e in listed.json()] == [dead.id]
    shown = await http.get(f"/v1/admin/dlq/{dead.id}", headers=ops)
    assert shown.json()["message_id"] == "m-http"
    dry = await http.post(f"/v1/admin/dlq/{dead.id}/replay", params={"dry_run": "true"}, headers=ops)
    assert dry.json()["outcome"] == "source-gone"
    replayed = await http.post("/v1/admin/dlq/replay", params={"partner": "aler"}, headers=ops)
    assert [r["outcome"] for r in replayed.json()] == ["source-gone"]
    [audited] = [r for r in await audit_records(gateway) if r["event_type"] == "dead-letter-replay"]
    assert audited["client_id"] == "api:ops-test"

    missing = await http.get("/v1/admin/dlq/aler:0:424242", headers=ops)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith("/dead-letter-not-found")
    partner = await bearer(http, "aler-test")
    refused = await http.post(f"/v1/admin/dlq/{dead.id}/replay", headers=partner)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert len([r for r in await audit_records(gateway) if r["event_type"] == "dead-letter-replay"]) == 1
