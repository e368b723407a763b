"""Minimisation and the audit of decisions over the in-memory store (plan M-02, M-03, T-10, T-11, and
privacy.md rule 16): outgoing data carries the flow's refrain and obligation labels; the audit log holds no
personal data (codice fiscale patterns, the fixture's names and identifiers, and every personal value of every
partner's golden examples) after a run of every flow; one audit record per decision and per disclosure, each
decision naming its id, consent version, policy revision, combining rule and provision.

The projections field by field (M-01) are in ``tests/integration/test_minimisation.py``, with the case that
checks the Kafka keys of two recipients of one person over both real backends.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import orjson

from gateway.identity.codice_fiscale import is_valid
from gateway.pipeline import Submission
from gateway.simulators import aler_arrears_message, fhir_consent
from tests.e2e.test_f1_microcredit_referral import tenant
from tests.pipeline_harness import Pipeline

CF_PATTERN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{6}[0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{2}"
                        r"[A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{3}[A-Za-z](?![A-Za-z0-9])")
"""A codice fiscale standing as a word of its own, in either case; random tokens and hashes that merely
contain sixteen such characters in a row (a token id, a base64 digest) are not codici fiscali."""


def codici_fiscali_in(text: str) -> list[str]:
    """Every valid codice fiscale (check character included) in ``text``."""
    return [match for match in CF_PATTERN.findall(text) if is_valid(match.upper())]


async def test_M02_M03_T10_T11_a_run_of_flows_leaves_labels_on_the_wire_and_no_personal_data_in_the_audit(
    pipeline: Pipeline,
) -> None:
    people = [tenant(52), tenant(53)]
    await pipeline.consent(people[0].cf)
    statuses = []
    for i, person in enumerate(people):
        statuses += await pipeline.submit("aler", aler_arrears_message(person, f"m03-{i}"), deliver=False)
    await pipeline.relay.drain()
    inbox = [orjson.loads(r.value) for r in await pipeline.read("out", "fwa")]
    assert [m["etichette"] for m in inbox] == [{"obblighi": ["PSEUD"], "divieti": ["NORDSCLCD", "NOREUSE"]}]

    records = await pipeline.audit()
    text = json.dumps(records)
    assert codici_fiscali_in(text) == []
    for person in people:
        for value in (person.cf, person.given_name, person.family_name, person.contract_id, person.unit_id):
            assert value.lower() not in text.lower()
    decisions = [r for r in records if r["event_type"] == "decision"]
    disclosures = [r for r in records if r["event_type"] == "disclosure"]
    # T-10/T-11: exactly one decision per (message, recipient), one disclosure per message that crossed
    assert len(decisions) == len(statuses) == 2
    assert len(disclosures) == sum(1 for s in statuses if s.state == "forwarded") == 1
    assert {d["decision_id"] for d in disclosures} <= {d["decision_id"] for d in decisions}


EXAMPLES = Path(__file__).resolve().parents[3] / "contracts" / "examples"
PERSONAL_KEYS = {"codice_fiscale", "id_contratto", "id_unita", "id_edificio", "id_caso", "telefono_sicuro", "via",
                 "civico", "given", "family", "birthDate"}
"""Native fields whose values identify a person, a home or a case: none may reach the audit log."""


def personal_values(document: object) -> set[str]:
    """Every value under :data:`PERSONAL_KEYS` and every codice fiscale anywhere in a native message."""
    found: set[str] = set()

    def walk(node: object, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str | int) and not isinstance(node, bool):
            text = str(node)
            if key in PERSONAL_KEYS or is_valid(text.upper()):
                found.add(text)

    walk(document, None)
    return found


async def test_M03_the_golden_messages_of_every_partner_leave_no_personal_data_in_the_audit(
    pipeline: Pipeline,
) -> None:
    """Every valid golden example (every message type of every partner, so every flow), with an explicit consent
    on record for each person in them: the decisions and disclosures they cause name nobody."""
    documents = {path: orjson.loads(path.read_bytes()) for path in sorted(EXAMPLES.glob("*/valid/*.json"))}
    assert documents, EXAMPLES
    personal = set().union(*(personal_values(d) for d in documents.values()))
    purposes = tuple(sorted({f.purpose for f in pipeline.registry.flows if f.consent.required}))
    recipients = tuple(sorted({f.recipient for f in pipeline.registry.flows}))
    for cf in sorted(value for value in personal if is_valid(value.upper())):
        # per purpose (each with the notice shown for it), one consent for any data and one that explicitly
        # permits the sensitive labels (a provision naming labels matches only data carrying them)
        for purpose, labels in itertools.product(purposes, ((), ("SDV", "PSY"))):
            await pipeline.consent(cf, purposes=(purpose,), recipients=recipients, consent_type="explicit",
                                   security_labels=labels)
    for path, document in documents.items():
        partner = path.parent.parent.name
        content_type = "application/fhir+json" if partner == "asst" else "application/json"
        statuses = await pipeline.submit(partner, document, content_type, deliver=False)
        assert statuses and all(s.state != "rejected" for s in statuses), (path.name, statuses)
    await pipeline.relay.drain()

    records = await pipeline.audit()
    text = json.dumps(records).lower()
    assert codici_fiscali_in(text) == []
    assert sorted(value for value in personal if value.lower() in text) == []
    flows = {r["flow_id"] for r in records if r["event_type"] == "disclosure"}
    assert {"F1", "F2", "F3", "F4", "F5", "F7", "F9", "F10", "F11"} <= flows  # the examples really crossed


async def test_rule16_each_decision_records_its_id_consent_version_policy_revision_rule_and_provision(
    pipeline: Pipeline,
) -> None:
    """privacy.md rule 16, on the stored records: a permit names all five, and its disclosure points back to it;
    a denial for want of consent names its decision, revision and rule but no consent (rule 13)."""
    people = [tenant(54), tenant(55)]
    consent = await pipeline.consents.record(fhir_consent(people[0].cf), "aler", "aler-test", "req-r16")
    for i, person in enumerate(people):
        await pipeline.intake.submit(Submission(
            sender="aler", sender_role="system", raw=orjson.dumps(aler_arrears_message(person, f"r16-{i}")),
            content_type="application/json", request_id=f"req-r16-{i}"))
    records = await pipeline.audit()
    [permit, denial] = [r for r in records if r["event_type"] == "decision"]
    [disclosure] = [r for r in records if r["event_type"] == "disclosure"]
    assert permit["outcome"] == "permit" and permit["decision_id"]
    assert permit["consent_ref"] == f"{consent.consent_id}@1"
    assert permit["policy_revision"] == pipeline.registry.revision
    assert permit["combining_rule"] and permit["matched_provision"] == f"consent:{consent.consent_id}@1/provision"
    assert disclosure["decision_id"] == permit["decision_id"]
    assert (denial["outcome"], denial["reason"]) == ("deny", "no-applicable-consent")
    assert denial["decision_id"] not in (None, permit["decision_id"])
    assert denial["policy_revision"] == pipeline.registry.revision and denial["combining_rule"]
    assert "consent_ref" not in denial and "matched_provision" not in denial
