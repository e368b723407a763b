"""Issue 10 points 1-2 end to end, on SQLite + embedded bus and PostgreSQL + Kafka: codici fiscali disguised
(separators, case, wrong check character) in the message id, correlation id or request id, sent over HTTP
and over Kafka, are refused or replaced; afterwards no table of the store (audit log, outbox, statuses) and
no log line holds any of them."""

from __future__ import annotations

import asyncio
import io
import random
import uuid

import httpx
import orjson
from sqlalchemy import select

from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.identity.synthetic import synthetic_codice_fiscale
from gateway.simulators import aler_arrears_message
from gateway.store.tables import metadata
from tests.conftest import bearer
from tests.e2e.test_f1_microcredit_referral import read_until, tenant
from tests.log_capture import log_output  # noqa: F401 - the fixture

RNG = random.Random(1010)
ID_CODE = synthetic_codice_fiscale(RNG)
"""The person whose code partners put in ids: nobody any message is about, so it may appear nowhere."""
WRONG_CHECK = ID_CODE[:15] + ("A" if ID_CODE[15] != "A" else "B")


def disguises() -> list[str]:
    """The code as the issue's repros wrote it, and more: separators, case, wrong check character."""
    c = ID_CODE
    return [
        c,
        f"M-{c[:6]}-{c[6:11]}-{c[11:]}-1",
        f"{c[:6]}_{c[6:11]}_{c[11:15]}".lower() + WRONG_CHECK[15],
        WRONG_CHECK,
        f"ref.{WRONG_CHECK[:8].lower()}.{WRONG_CHECK[8:]}",
    ]


def folded(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


async def every_stored_value(gateway: Gateway) -> str:
    """Every column of every row of every table, as one folded text."""
    parts = []
    async with gateway.store.transaction() as tx:
        for table in metadata.sorted_tables:
            for row in (await tx.conn.execute(select(table))).all():
                parts.extend(repr(value) for value in row)
    return folded(" ".join(parts))


async def test_M03_disguised_codes_in_ids_never_reach_the_audit_log_the_outbox_or_the_logs(
    gateway: Gateway, http: httpx.AsyncClient, log_output: io.StringIO  # noqa: F811
) -> None:
    aler = await bearer(http, "aler-test")
    person = tenant(3)
    sent_request_ids = []
    for n, disguise in enumerate(disguises()):
        for field in ("id_messaggio", "id_correlazione"):
            message = aler_arrears_message(person, f"scr-{n}-{field}")
            message[field] = disguise
            refused = await http.post("/v1/partners/aler/messages", content=orjson.dumps(message),
                                      headers={**aler, "content-type": "application/json"})
            assert refused.status_code in (400, 422), refused.text
            assert folded(ID_CODE)[:15] not in folded(refused.text)
        ok = aler_arrears_message(person, f"scr-{n}-rid")
        accepted = await http.post("/v1/partners/aler/messages", content=orjson.dumps(ok),
                                   headers={**aler, "content-type": "application/json", "x-request-id": disguise})
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["x-request-id"] != disguise
        assert str(uuid.UUID(accepted.headers["x-request-id"])) == accepted.headers["x-request-id"]
        sent_request_ids.append(disguise)

    in_aler = gateway.settings.topics.name("in", "aler")
    records = []
    for n, disguise in enumerate(disguises()):
        bad = aler_arrears_message(person, f"scr-k-{n}")
        bad["id_messaggio"] = disguise
        records.append(OutgoingRecord(topic=in_aler, value=orjson.dumps(bad)))
        clean = aler_arrears_message(person, f"scr-k-{n}-rid")
        records.append(OutgoingRecord(topic=in_aler, value=orjson.dumps(clean),
                                      headers=(("request-id", disguise.encode()),)))
    await gateway.bus.publish(records)
    dead = await read_until(gateway, "dlq", "aler", len(disguises()))
    assert len(dead) == len(disguises())
    async with asyncio.timeout(60):
        for n in range(len(disguises())):
            while True:
                async with gateway.store.transaction() as tx:
                    status = await tx.message("aler", f"scr-k-{n}-rid")
                if status is not None:
                    break
                await asyncio.sleep(0.1)
            assert status.request_id not in sent_request_ids
            assert str(uuid.UUID(status.request_id)) == status.request_id

    assert folded(ID_CODE)[:15] not in await every_stored_value(gateway)
    assert folded(ID_CODE)[:15] not in folded(log_output.getvalue())
    assert all(folded(ID_CODE)[:15] not in folded(repr(r.value) + repr(r.headers)) for r in dead)
