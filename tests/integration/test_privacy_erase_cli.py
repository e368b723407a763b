"""Issue 10 point 15 and T-09 for operators: ``gateway privacy erase-request`` and ``erase-approve`` take the
same two steps as the privacy-officer API. The request alone changes nothing; the officer who requested cannot
approve; another officer's approval erases; both steps are audited; the identifier, read from a file or stdin, never
shows in the command's output or in the audit log. The commands run as an operator runs them, on the store of a
running gateway, on both backend pairs."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from gateway.identity.codice_fiscale import contains_codice_fiscale, contains_person_identifier
from gateway.store.tables import audit_log
from tests.integration.test_privacy_office import seed_without_consent
from tests.integration.test_privacy_roles import report

GATEWAY = [sys.executable, "-m", "gateway.cli"]


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    scopes = frozenset({"messages:submit", "status:read", "inbox:read", "consent:write", "consent:read"})
    return (
        PartnerClient("aler-test", secret_hash, "aler", "system", scopes),
        PartnerClient("fwa-test", secret_hash, "fwa", "system", scopes),
        PartnerClient("comune-test", secret_hash, "comune", "system", scopes),
        PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer", frozenset({"privacy:report"})),
    )


class Operator:
    """Runs ``gateway privacy ...`` in its own process on the gateway's store, as an operator would."""

    def __init__(self, gateway: Gateway, workdir: Path) -> None:
        settings = gateway.settings
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update(GATEWAY_DATA_DIR=str(settings.data_dir), GATEWAY_BUS="embedded", COLUMNS="200",
                        GATEWAY_DATABASE_URL=settings.resolved_database_url())
        self.workdir = workdir
        self.outputs: list[str] = []

    async def run(self, *args: str, stdin: str | None = None) -> tuple[int, str]:
        done = await asyncio.to_thread(subprocess.run, [*GATEWAY, "privacy", *args], env=self.env, input=stdin,
                                       cwd=self.workdir, capture_output=True, text=True, timeout=120, check=False)
        output = done.stdout + done.stderr
        self.outputs.append(output)
        return done.returncode, output


async def test_15_erasure_from_the_command_line_takes_two_different_officers(
    gateway: Gateway, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    person, bystander = await seed_without_consent(gateway, http)
    (tmp_path / "person.txt").write_text(f"\n{person}\n", encoding="utf-8")
    (tmp_path / "bystander.txt").write_text(bystander, encoding="utf-8")
    operator = Operator(gateway, tmp_path)
    before = await report(http, "dpo-test", person)
    assert {e["event_type"] for e in before} == {"decision", "disclosure"}

    code, out = await operator.run("erase-request", "--identifier-file", "person.txt", "--officer", "dpo.rossi")
    assert code == 0, out
    found = re.search(r"^erasure requested: request (\d+) .* within 1 d, by \S+:$", out, flags=re.MULTILINE)
    assert found is not None, out
    request = found[1]
    assert f"gateway privacy erase-approve --request {request} " in out
    after_request = await report(http, "dpo-test", person)  # the request alone changes nothing, and shows
    assert after_request[:-1] == before and after_request[-1]["event_type"] == "erasure"
    async with gateway.store.transaction() as tx:
        subject = await tx.subject("cf", person, create=False)
    assert subject is not None and subject.subject_key is not None  # still linkable

    approve = ("erase-approve", "--request", request, "--officer")
    code, out = await operator.run(*approve, "dpo.rossi", "--identifier-file", "person.txt", "--yes")
    assert code == 2 and "another officer must" in out, out
    code, out = await operator.run(*approve, "dpo.bianchi", "--identifier-file", "bystander.txt", "--yes")
    assert code == 2 and "does not lead to the person of the erasure request" in out, out
    code, out = await operator.run("erase-approve", "--request", str(int(request) - 1), "--officer", "dpo.bianchi",
                                   "--identifier-file", "person.txt", "--yes")
    assert code == 2 and "no erasure request at audit record" in out, out
    code, out = await operator.run(*approve, "dpo.bianchi", "--identifier-file", "person.txt", stdin="n\n")
    assert code == 1, out  # not confirmed
    code, out = await operator.run(*approve, "dpo.bianchi", "--identifier-file", "-", stdin=person)
    assert code == 2 and "needs --yes" in out, out
    code, out = await operator.run(*approve, person, "--identifier-file", "person.txt", "--yes")
    assert code == 2 and "--officer must" in out, out  # an officer name holding a CF never reaches the log
    assert await report(http, "dpo-test", person) == after_request  # refused approvals changed nothing either

    code, out = await operator.run(*approve, "dpo.bianchi", "--identifier-file", "-", "--yes", stdin=person + "\n")
    assert code == 0, out
    done = re.search(r"^erased: (\d+) stored payload\(s\) emptied, \d+ undelivered message\(s\) dropped; "
                     r"audit record (\d+)$", out, flags=re.MULTILINE)
    assert done is not None and int(done[1]) > 0, out
    assert await report(http, "dpo-test", person) == []
    assert await report(http, "dpo-test", bystander)
    code, out = await operator.run(*approve, "dpo.verdi", "--identifier-file", "person.txt", "--yes")
    assert code == 2 and "carried out already" in out, out  # the request is spent

    async with gateway.store.transaction() as tx:
        requested, erased = await tx.audit_entry(int(request)), await tx.audit_entry(int(done[2]))
        records = [str(row.record) for row in await tx.conn.execute(select(audit_log.c.record))]
    assert requested is not None and erased is not None
    first, second = orjson.loads(requested["record"]), orjson.loads(erased["record"])
    assert (first["action"], first["client_id"], first["requesting_org"]) == (
        "request-erasure", "dpo.rossi", "gateway-privacy")
    assert (second["action"], second["client_id"], second["queried_ref"]) == (
        "erase-subject", "dpo.bianchi", f"erasure-request/{request}")
    assert [r for r in records if "request-erasure" in r or "erase-subject" in r] == [requested["record"],
                                                                                     erased["record"]]
    for text in [*records, *operator.outputs]:
        assert person not in text and bystander not in text
    assert not [text for text in operator.outputs if contains_person_identifier(text)]
    assert not [r for r in records if contains_codice_fiscale(r)]
