"""Identity gaps end to end through the bus, on both backend pairs: a message quoting a crosswalk token gives the
Comune its own case id back, and a token that is forged, or quoted about another person, is dead-lettered with
its reason and never echoed. How people without identifiers are matched, and which recipient a token resolves
for, is decided by the same intake over the in-memory store in
``tests/unit/pipeline/test_identity_gaps_on_memory_store.py``."""

from __future__ import annotations

import orjson

from gateway.bootstrap import Gateway
from gateway.simulators import comune_case_event
from tests.e2e.test_f1_microcredit_referral import read_until
from tests.e2e.test_flows import CF, submit

OTHER_CF = "PGDCSN55T58F205S"


async def test_aler_quoting_its_case_token_gives_the_comune_its_own_case_id_and_a_forged_token_is_refused(
    gateway: Gateway,
) -> None:
    await submit(gateway, "comune", comune_case_event(CF, "MI-SST-2026-000777", "f3-t2", "corr-f2-t2"))
    [record] = await read_until(gateway, "out", "aler", 1, settle_s=0.5)
    case_token = orjson.loads(record.value)["payload"]["case_id"]
    milestone = {"id_messaggio": "f9-t1", "id_correlazione": "corr-f9-t1", "tipo_messaggio": "evento-sfratto",
                 "versione": "1.0", "data_evento": "2026-11-20T09:30:00+01:00", "finalita": "housing-support",
                 "destinatari": ["comune"], "riferimento_gateway": case_token,
                 "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
                 "intestatario": {"codice_fiscale": CF},
                 "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"}}
    await submit(gateway, "aler", milestone)
    [to_comune] = await read_until(gateway, "out", "comune", 1, settle_s=0.5)
    assert orjson.loads(to_comune.value)["id_caso"] == "MI-SST-2026-000777"

    forged = "gwt_" + "a" * 24
    await submit(gateway, "aler", {**milestone, "id_messaggio": "f9-t2", "riferimento_gateway": forged})
    someone_else = {**milestone, "id_messaggio": "f9-t3", "intestatario": {"codice_fiscale": OTHER_CF}}
    await submit(gateway, "aler", someone_else)  # a real token, quoted about another person
    dead = await read_until(gateway, "dlq", "aler", 2)
    for entry in dead:
        assert "unknown-token" in entry.value.decode() and forged not in entry.value.decode()
    assert len(await read_until(gateway, "out", "comune", 1, settle_s=0.5)) == 1
