"""``gateway demo``: the gateway on embedded defaults with simulated partners exchanging referrals.

Starts the API on 127.0.0.1, registers a demo client for every partner of the registry (scopes from the
registry and the partners' descriptors) and a privacy officer of the console (``/console``, local account with
TOTP, printed), and runs an exchange over real HTTP and the embedded bus: an operator records consents (FHIR R4)
for some tenants and withdraws one; ALER submits arrears referrals over HTTP and by producing to ``in.aler``;
FWA reads its inbox and answers with an outcome; the Comune takes a case in charge and reports an emergency;
ASST reports a nurse visit (FHIR R4 Encounter); ALER signals a fragility. Prints what crossed, what was
denied and why (reason classes), decisions per flow from the audit log, its verification, and where to look.

The summary is the only thing printed: the gateway's own JSON logs go to a file (``demo.log`` in the demo's
data directory) so they never interleave with it. The API address is given only while the API runs (not
after ``--once``), and the summary ends with the exact command that verifies the demo's own audit log, since
the demo keeps its store apart (``GATEWAY_DATA_DIR/demo``, wiped at each start) from the default one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from rich.console import Console
from rich.table import Table

from gateway.api import create_app
from gateway.api.serving import server_config
from gateway.audit.verify import VerificationReport, verify_log
from gateway.auth import PartnerClient, hash_client_secret
from gateway.bootstrap import Gateway, build
from gateway.bus import OutgoingRecord
from gateway.console.accounts import NewAccount, new_account
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.logging import configure_logging
from gateway.partners import descriptor
from gateway.policy import PolicyRegistry, load_registry
from gateway.secret_files import write_secret_file
from gateway.settings import GatewaySettings
from gateway.simulators import (
    aler_arrears_message,
    asst_encounter,
    comune_case_event,
    comune_emergency,
    fhir_consent,
    fwa_outcome,
)

__all__ = ["DemoSummary", "run_demo"]

_CONSENT_COLLECTOR = "aler"
"""Who records the consents in the story (the operator at ALER's tenancy desk): its client also gets the consent
scopes."""
_OFFICER = "gateway-privacy"
_OFFICER_SCOPES = ("audit:verify", "privacy:report", "privacy:erase")


def _scopes(registry: PolicyRegistry) -> dict[str, tuple[str, ...]]:
    """Scopes of the demo's clients: one per partner with topics in the registry (it reads its status and inbox,
    and submits messages if its adapter decodes what it sends), the consent collector's consent scopes, and the
    privacy officer's client."""
    scopes: dict[str, tuple[str, ...]] = {}
    for organisation in registry.exchanging():
        partner = descriptor(organisation)
        sends = partner is not None and partner.decode is not None
        consents = ("consent:write", "consent:read") if organisation == _CONSENT_COLLECTOR else ()
        scopes[organisation] = (*(("messages:submit",) if sends else ()), "status:read", "inbox:read", *consents)
    return {**scopes, _OFFICER: _OFFICER_SCOPES}


@dataclass
class DemoSummary:
    """What one exchange did."""

    submitted: int = 0
    forwarded: int = 0
    denied: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    replays_ignored: int = 0
    fwa_received: int = 0
    fwa_fields: list[str] = field(default_factory=list)
    audit: VerificationReport | None = None
    by_flow: dict[tuple[str, str], int] = field(default_factory=dict)
    """(flow, permit|deny) -> decisions, read back from the audit log."""
    inboxes: dict[str, int] = field(default_factory=dict)
    officer: NewAccount | None = None
    """The demo's console officer (username, TOTP secret); the password is in ``officer_password``."""
    officer_password: str | None = None


def _free_port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else (or for 0) a free port the system picks."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _demo_clients(data_dir: Path, scopes_by_organisation: dict[str, tuple[str, ...]]
                  ) -> tuple[tuple[PartnerClient, ...], dict[str, str]]:
    secrets_by_client = {f"{org}-demo": secrets.token_urlsafe(18) for org in scopes_by_organisation}
    clients = tuple(
        PartnerClient(client_id=f"{org}-demo", secret_hash=hash_client_secret(secrets_by_client[f"{org}-demo"]),
                      organisation=org, role="privacy-officer" if org == _OFFICER else "system",
                      scopes=frozenset(scopes))
        for org, scopes in scopes_by_organisation.items()
    )
    write_secret_file(data_dir / "demo-clients.json", json.dumps(secrets_by_client, indent=2))
    return clients, secrets_by_client


class _Partner:
    """A simulated partner system talking to the gateway over HTTP."""

    def __init__(self, http: httpx.AsyncClient, client_id: str, secret: str, organisation: str) -> None:
        self.http = http
        self.client_id = client_id
        self.secret = secret
        self.organisation = organisation
        self._token: str | None = None

    async def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = await self.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                            auth=(self.client_id, self.secret))
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    async def post_json(self, path: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
        headers = {**await self._headers(), "content-type": content_type}
        return await self.http.post(path, content=body, headers=headers)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers=await self._headers())


async def _exchange(gateway: Gateway, aler: _Partner, fwa: _Partner, partners: dict[str, _Partner],
                    tenants: list[SyntheticTenant], summary: DemoSummary) -> None:
    consent_ids: list[str] = []
    for tenant in tenants[: len(tenants) // 2]:  # half the tenants agree to be referred (and to hear back)
        consent = fhir_consent(tenant.cf, recipients=("fwa", "aler"))
        response = await aler.post_json("/v1/consents", orjson.dumps(consent))
        response.raise_for_status()
        consent_ids.append(response.json()["consent_id"])
    withdrawn = await aler.post_json(f"/v1/consents/{consent_ids[0]}/withdraw", b"")
    withdrawn.raise_for_status()

    batch = uuid.uuid4().hex[:8]
    over_kafka = tenants[-2:]
    for i, tenant in enumerate(tenants[:-2]):
        purpose = None if i == 1 else "microcredit-assessment"  # one referral forgets its purpose
        body = orjson.dumps(aler_arrears_message(tenant, f"demo-{batch}-{i}", purpose=purpose))
        response = await aler.post_json("/v1/partners/aler/messages", body)
        summary.submitted += 1
        for status in response.json():
            if status["state"] == "forwarded":
                summary.forwarded += 1
            else:
                summary.denied[status["reason_class"]] = summary.denied.get(status["reason_class"], 0) + 1
    replay = await aler.post_json("/v1/partners/aler/messages", orjson.dumps(
        aler_arrears_message(tenants[0], f"demo-{batch}-0")))
    summary.replays_ignored += int(replay.status_code == 202)
    broken = await aler.post_json("/v1/partners/aler/messages", b'{"id_messaggio": 42}')
    summary.rejected += int(broken.status_code == 422)

    topic = gateway.settings.topics.name("in", "aler")
    await gateway.bus.publish([
        OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(t, f"demo-{batch}-k{i}")),
                       headers=(("request-id", f"demo-{batch}-k{i}".encode()),))
        for i, t in enumerate(over_kafka)
    ])
    summary.submitted += len(over_kafka)
    for i in range(len(over_kafka)):
        for _ in range(200):
            status = await aler.get(f"/v1/partners/aler/messages/demo-{batch}-k{i}")
            if status.status_code == 200:
                state = status.json()
                if state["state"] == "forwarded":
                    summary.forwarded += 1
                else:
                    summary.denied[state["reason_class"]] = summary.denied.get(state["reason_class"], 0) + 1
                break
            await asyncio.sleep(0.05)

    await gateway.relay.drain()
    inbox = (await fwa.get("/v1/partners/fwa/inbox?limit=500")).json()
    referrals = [m for m in inbox["messages"] if m["topic"].endswith("out.fwa")]
    summary.fwa_received = len(referrals)
    if referrals:
        summary.fwa_fields = sorted(_leaf_paths(referrals[0]["body"]))
        await _other_partners(aler, fwa, partners, tenants, referrals[0]["body"], summary)


async def _other_partners(aler: _Partner, fwa: _Partner, partners: dict[str, _Partner], tenants: list[SyntheticTenant],
                          referral: dict[str, Any], summary: DemoSummary) -> None:
    """The Comune, ASST and FWA answer; ALER asks ASST for a nurse visit, which ASST reports back, and signals a
    fragility to the Comune, which reports an emergency (F1-outcome, F2, F3, F4, F5, F10)."""
    batch = uuid.uuid4().hex[:8]
    person = tenants[0]
    await fwa.post_json("/v1/partners/fwa/messages", orjson.dumps(
        fwa_outcome(referral["id_segnalazione"], f"demo-{batch}-esito", referral["id_correlazione"])))
    await partners["comune"].post_json("/v1/partners/comune/messages", orjson.dumps(
        comune_case_event(person.cf, f"MI-SST-{batch}", f"demo-{batch}-caso", f"demo-{batch}-caso")))
    care = fhir_consent(person.cf, purposes=("care-coordination",), recipients=("asst",), consent_type="explicit")
    (await aler.post_json("/v1/consents", orjson.dumps(care))).raise_for_status()
    await aler.post_json("/v1/partners/aler/messages", orjson.dumps({
        "id_messaggio": f"demo-{batch}-richiesta", "id_correlazione": f"demo-{batch}-visita",
        "tipo_messaggio": "richiesta-assistenza", "versione": "1.0", "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "care-coordination", "destinatari": ["asst"], "id_richiesta": f"ALER-R-{batch}",
        "assistito": {"codice_fiscale": person.cf}, "servizio": "home-nursing-visit", "urgenza": "routine",
        "finestra": {"dal": "2026-11-23", "al": "2026-11-30"},
    }))
    encounter = asst_encounter(person.cf, f"enc-{batch}", f"demo-{batch}-visita")
    response = await partners["asst"].post_json("/v1/partners/asst/messages", orjson.dumps(encounter),
                                                  "application/fhir+json")
    response.raise_for_status()
    await aler.post_json("/v1/partners/aler/messages", orjson.dumps({
        "id_messaggio": f"demo-{batch}-fragilita", "id_correlazione": f"demo-{batch}-fragilita",
        "tipo_messaggio": "segnalazione-fragilita", "versione": "1.0", "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "social-case-management", "destinatari": ["comune"],
        "contratto": {"id_contratto": person.contract_id, "quartiere": person.quartiere, "municipio": 7},
        "intestatario": {"codice_fiscale": person.cf},
        "nucleo": {"tipologia": person.household_type, "componenti": 1, "presenza_minori": False,
                   "presenza_over_65": True, "presenza_disabilita": False},
        "segnali": ["isolation"],
    }))
    await partners["comune"].post_json("/v1/partners/comune/messages", orjson.dumps(
        comune_emergency(tenants[1].cf, f"demo-{batch}-emergenza")))


def _leaf_paths(document: Any, prefix: str = "") -> list[str]:
    if isinstance(document, dict):
        return [p for k, v in document.items() for p in _leaf_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


async def _verify(gateway: Gateway, summary: DemoSummary) -> VerificationReport:
    async with gateway.store.transaction() as tx:
        head = await tx.audit_head()
        # the records the head counts: a running gateway may append after the head was read
        entries = await tx.audit_entries(0, head.size)
    by_flow: dict[tuple[str, str], int] = {}
    for entry in entries:
        record = json.loads(entry["record"])
        if record["event_type"] == "decision":
            key = (record.get("flow_id") or "(no flow)", record["outcome"])
            by_flow[key] = by_flow.get(key, 0) + 1
    summary.by_flow = by_flow
    return verify_log(entries, head)


def _print(console: Console, summary: DemoSummary, settings: GatewaySettings, url: str | None,
           log_file: Path | None) -> None:
    """The summary of the exchanges so far; ``url`` only while the API is serving."""
    table = Table(title="Referrals ALER -> Fondazione Welfare Ambrosiano (flow F1)")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("submitted (HTTP and in.aler)", str(summary.submitted))
    table.add_row("forwarded to FWA (consent permits)", str(summary.forwarded))
    for reason, count in sorted(summary.denied.items()):
        table.add_row(f"denied: {reason}", str(count))
    table.add_row("invalid message refused (problem+json)", str(summary.rejected))
    table.add_row("replayed message id, not forwarded again", str(summary.replays_ignored))
    table.add_row("referrals in FWA's inbox", str(summary.fwa_received))
    console.print(table)
    console.print("[bold]Fields FWA received[/bold]: " + ", ".join(summary.fwa_fields))
    flows = Table(title="Decisions by flow, all four partners (from the audit log)")
    flows.add_column("flow")
    flows.add_column("permitted", justify="right")
    flows.add_column("denied", justify="right")
    for flow_id in sorted({f for f, _ in summary.by_flow}):
        flows.add_row(flow_id, str(summary.by_flow.get((flow_id, "permit"), 0)),
                      str(summary.by_flow.get((flow_id, "deny"), 0)))
    console.print(flows)
    if summary.audit is not None:
        verdict = "intact" if summary.audit.ok else f"BROKEN at index {summary.audit.first_bad_index}"
        root = summary.audit.root_hex[:16]
        console.print(f"[bold]Audit log[/bold]: {summary.audit.size} records, {verdict}, root {root}…")
    data_dir = settings.data_dir.resolve()
    if url is not None:
        console.print(f"[bold]Privacy officers[/bold]: client gateway-privacy-demo, {url}/v1/privacy/review-queue, "
                      f"/v1/privacy/records-of-processing, POST /v1/privacy/disclosure-report, /v1/audit/checkpoint")
        console.print(f"[bold]API[/bold]: {url} (OpenAPI at {url}/docs), serving until Ctrl-C; demo client "
                      f"secrets {data_dir / 'demo-clients.json'}")
    else:
        console.print("[bold]API[/bold]: stopped with the exchange; run `gateway demo` without --once to keep it "
                      "serving")
    if url is not None and summary.officer is not None:
        officer = summary.officer
        console.print(f"[bold]Privacy console[/bold]: {url}/console/ — sign in as {officer.username}, password "
                      f"{summary.officer_password}, TOTP secret {officer.totp_secret} (add {officer.otpauth_uri} to an "
                      f"authenticator app, or: python3 -c 'import pyotp; print(pyotp.TOTP(\"{officer.totp_secret}\")"
                      f".now())')", soft_wrap=True)
    console.print(f"[bold]Where to look[/bold]: store {data_dir / 'gateway.sqlite3'}; bus log "
                  f"{settings.embedded_bus_path().resolve()}"
                  + (f"; logs {log_file.resolve()}" if log_file is not None else ""))
    console.print(f"[bold]Verify this audit log[/bold]: GATEWAY_DATA_DIR={data_dir} gateway audit verify",
                  soft_wrap=True)


async def run_demo(settings: GatewaySettings, *, once: bool, port: int, console: Console | None = None,
                   tenants: int = 12, log_file: Path | None = None) -> DemoSummary:
    """Run the demo; with ``once`` a single bounded exchange, else exchanges every few seconds until Ctrl-C.
    With ``log_file`` (inside ``settings.data_dir``, which is wiped first) the gateway's logs go there."""
    console = console or Console()
    if settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    settings.data_dir.mkdir(parents=True)
    log_stream = None
    if log_file is not None:
        log_stream = log_file.open("a", encoding="utf-8")
        configure_logging("INFO", stream=log_stream)
    scopes = _scopes(load_registry())
    clients, client_secrets = _demo_clients(settings.data_dir, scopes)
    settings = settings.model_copy(update={"console_plain_http": True})  # the console is served on http://127.0.0.1
    gateway = build(settings, clients=clients)
    await gateway.start()
    summary = DemoSummary()
    summary.officer_password = secrets.token_urlsafe(12)
    summary.officer = await new_account(
        gateway.store, "dpo-demo", "Ufficio protezione dati (demo)", settings.data_protection_office,
        frozenset({"privacy-officer", "erasure-officer"}), summary.officer_password, datetime.now(UTC))
    port = _free_port(port)
    url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(server_config(create_app(gateway, manage_lifecycle=False), "127.0.0.1", port,
                                          log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            partners = {org: _Partner(http, f"{org}-demo", client_secrets[f"{org}-demo"], org) for org in scopes}
            aler, fwa = partners["aler"], partners["fwa"]
            population = [t for t in generate_tenants("S", seed=2026, limit=500) if t.arrears_cents > 0]
            round_no = 0
            while True:
                chunk = population[round_no * tenants:(round_no + 1) * tenants]
                await _exchange(gateway, aler, fwa, partners, chunk, summary)
                await gateway.relay.drain()
                summary.audit = await _verify(gateway, summary)
                _print(console, summary, settings, None if once else url, log_file)
                round_no += 1
                if once or (round_no + 1) * tenants > len(population):
                    break
                await asyncio.sleep(5)
            if not once:
                await serving
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await gateway.stop()
        if log_stream is not None:
            configure_logging("WARNING")  # back to stderr before the file closes
            log_stream.close()
    return summary
