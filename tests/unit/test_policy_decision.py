"""The decision rules (privacy.md rules 1-4, 6, 7, 11, 13, 15, 16), on pure data; provisions, notices and grantors
are in test_consent_record.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy import ConsentRecord, DecisionRequest, decide, load_registry, sender_reason_class
from gateway.policy.consent import Provision

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REGISTRY = load_registry()
REQUEST = DecisionRequest(sender="aler", sender_role="system", recipient="fwa",
                          message_type="tenancy.arrears-referral", purpose="microcredit-assessment",
                          subject_pseudonym="sbj_a")
PERMIT = ConsentRecord(consent_id="cns-1", version=1, subject_pseudonym="sbj_a", status="active", decision="permit",
                       purposes=frozenset({"microcredit-assessment"}), recipients=frozenset({"fwa"}),
                       period_start=NOW - timedelta(days=1), period_end=NOW + timedelta(days=30))


def test_C01_active_consent_for_purpose_and_recipient_permits() -> None:
    decision = decide(REQUEST, REGISTRY, [PERMIT], NOW)
    assert decision.outcome == "permit"
    assert decision.consent_ref == "cns-1@1"
    assert decision.flow is not None and decision.flow.id == "F1"
    assert decision.policy_revision == REGISTRY.revision
    assert decision.combining_rule == "deny-overrides"
    assert decision.matched_provision == "consent:cns-1@1/provision"


def test_C02_consent_for_another_purpose_does_not_permit() -> None:
    other = replace(PERMIT, purposes=frozenset({"housing-support"}))
    decision = decide(REQUEST, REGISTRY, [other], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "no-applicable-consent")


def test_C03_missing_purpose_is_denied_not_wildcarded() -> None:
    decision = decide(replace(REQUEST, purpose=None), REGISTRY, [PERMIT], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "purpose-missing")


def test_C04_unknown_purpose_is_denied() -> None:
    decision = decide(replace(REQUEST, purpose="marketing"), REGISTRY, [PERMIT], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "purpose-not-permitted")


def test_C05_sender_not_entitled_to_the_purpose_is_denied_before_consent() -> None:
    decision = decide(replace(REQUEST, sender_role="porter"), REGISTRY, [PERMIT], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "purpose-not-permitted")
    comune = replace(REQUEST, sender="comune")
    assert decide(comune, REGISTRY, [PERMIT], NOW).reason == "purpose-not-permitted"


def test_C06_expired_consent_denies() -> None:
    expired = replace(PERMIT, period_end=NOW - timedelta(seconds=1))
    decision = decide(REQUEST, REGISTRY, [expired], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "consent-expired")


def test_C07_consent_not_yet_valid_denies() -> None:
    future = replace(PERMIT, period_start=NOW + timedelta(days=1))
    assert decide(REQUEST, REGISTRY, [future], NOW).outcome == "deny"


@pytest.mark.parametrize("status", ["inactive", "draft", "entered-in-error"])
def test_C08_inactive_draft_or_entered_in_error_consent_denies(status: str) -> None:
    decision = decide(REQUEST, REGISTRY, [replace(PERMIT, status=status)], NOW)  # type: ignore[arg-type]
    assert (decision.outcome, decision.reason) == ("deny", "no-applicable-consent")


def test_recipient_not_named_by_the_consent_is_denied() -> None:
    only_comune = replace(PERMIT, recipients=frozenset({"comune"}))
    assert decide(REQUEST, REGISTRY, [only_comune], NOW).outcome == "deny"
    any_recipient = replace(PERMIT, recipients=frozenset())
    assert decide(REQUEST, REGISTRY, [any_recipient], NOW).outcome == "permit"


def test_recipient_without_a_declared_flow_is_denied_even_with_consent() -> None:
    to_asst = replace(REQUEST, recipient="asst")
    broad = replace(PERMIT, recipients=frozenset())
    decision = decide(to_asst, REGISTRY, [broad], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "recipient-not-permitted")


def test_consent_of_another_subject_never_applies() -> None:
    assert decide(REQUEST, REGISTRY, [replace(PERMIT, subject_pseudonym="sbj_b")], NOW).outcome == "deny"


def test_C13_newer_version_of_a_lineage_wins_over_older() -> None:
    withdrawn = replace(PERMIT, version=2, status="inactive", withdrawn=True)
    decision = decide(REQUEST, REGISTRY, [PERMIT, withdrawn], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "consent-withdrawn")
    reconsented = replace(PERMIT, version=3)
    assert decide(REQUEST, REGISTRY, [PERMIT, withdrawn, reconsented], NOW).consent_ref == "cns-1@3"


def test_deny_wins_across_instruments() -> None:
    opt_out = replace(PERMIT, consent_id="cns-2", decision="deny")
    decision = decide(REQUEST, REGISTRY, [PERMIT, opt_out], NOW)
    assert decision.outcome == "deny"
    assert decision.combining_rule == "deny-overrides"


def test_C15_no_consent_and_no_data_give_the_same_sender_reason() -> None:
    no_consent = decide(REQUEST, REGISTRY, [], NOW)
    withdrawn = decide(REQUEST, REGISTRY, [replace(PERMIT, status="inactive", withdrawn=True)], NOW)
    expired = decide(REQUEST, REGISTRY, [replace(PERMIT, period_end=NOW - timedelta(days=1))], NOW)
    reasons = {sender_reason_class(d.reason) for d in (no_consent, withdrawn, expired) if d.reason}
    assert reasons == {"not-authorised"}
    assert sender_reason_class("purpose-missing") == "purpose-missing"


# A lineage has one record per version (the store's primary key), hence unique_by below.
consents = st.builds(
    ConsentRecord,
    consent_id=st.sampled_from(["cns-1", "cns-2", "cns-3"]),
    version=st.integers(1, 4),
    subject_pseudonym=st.sampled_from(["sbj_a", "sbj_b"]),
    status=st.sampled_from(["active", "inactive", "draft", "entered-in-error"]),
    decision=st.sampled_from(["permit", "deny"]),
    purposes=st.frozensets(st.sampled_from(["microcredit-assessment", "housing-support"]), min_size=1),
    recipients=st.frozensets(st.sampled_from(["fwa", "comune"])),
    period_start=st.none() | st.just(NOW - timedelta(days=1)) | st.just(NOW + timedelta(days=1)),
    period_end=st.none() | st.just(NOW + timedelta(days=1)) | st.just(NOW - timedelta(hours=1)),
    withdrawn=st.booleans(),
)


@given(st.lists(consents, max_size=6, unique_by=lambda c: (c.consent_id, c.version)))
def test_C20_decision_is_deterministic_and_order_independent(records: list[ConsentRecord]) -> None:
    first = decide(REQUEST, REGISTRY, records, NOW)
    again = decide(REQUEST, REGISTRY, list(reversed(records)), NOW)
    assert (first.outcome, first.reason, first.consent_ref) == (again.outcome, again.reason, again.consent_ref)


@given(st.lists(consents, max_size=6, unique_by=lambda c: (c.consent_id, c.version)), consents)
def test_C21_adding_a_deny_never_widens(records: list[ConsentRecord], extra: ConsentRecord) -> None:
    before = decide(REQUEST, REGISTRY, records, NOW)
    denial = replace(extra, consent_id="cns-deny", decision="deny")
    after = decide(REQUEST, REGISTRY, [*records, denial], NOW)
    assert not (before.outcome == "deny" and after.outcome == "permit")


provisions = st.builds(
    Provision,
    purposes=st.frozensets(st.sampled_from(["microcredit-assessment", "housing-support"])),
    recipients=st.frozensets(st.sampled_from(["fwa", "comune"])),
    data_classes=st.frozensets(st.sampled_from(["tenancy.arrears-referral", "tenancy.eviction-milestone"])),
)


@given(st.lists(consents, max_size=6, unique_by=lambda c: (c.consent_id, c.version)), provisions)
def test_C21_a_nested_deny_added_to_a_permit_never_widens(records: list[ConsentRecord], nested: Provision) -> None:
    before = decide(REQUEST, REGISTRY, records, NOW)
    narrowed = [replace(c, provisions=(*c.provisions, nested)) if c.decision == "permit" else c for c in records]
    after = decide(REQUEST, REGISTRY, narrowed, NOW)
    assert not (before.outcome == "deny" and after.outcome == "permit")


@given(st.lists(consents, max_size=6, unique_by=lambda c: (c.consent_id, c.version)))
def test_permit_always_names_an_active_in_period_permit_consent(records: list[ConsentRecord]) -> None:
    decision = decide(REQUEST, REGISTRY, records, NOW)
    if decision.outcome == "permit":
        matched = [c for c in records if c.ref == decision.consent_ref]
        assert matched and matched[0].status == "active" and matched[0].in_period(NOW)
        assert matched[0].decision == "permit" and "microcredit-assessment" in matched[0].purposes


def _flow_request(sender: str, recipient: str, message_type: str, purpose: str, **extra: object) -> DecisionRequest:
    return DecisionRequest(sender=sender, sender_role="system", recipient=recipient, message_type=message_type,
                           purpose=purpose, subject_pseudonym="sbj_a", **extra)  # type: ignore[arg-type]


def test_C12_violence_and_psychological_labels_never_cross_where_the_flow_refuses_them() -> None:
    visit = _flow_request("asst", "aler", "care.encounter", "care-coordination")
    assert decide(visit, REGISTRY, [], NOW).outcome == "permit"
    for label in ("SDV", "PSY", "MH"):
        decision = decide(replace(visit, labels=frozenset({"S3", label})), REGISTRY, [], NOW)
        assert (decision.outcome, decision.reason) == ("deny", "sensitive-label-denied")


def test_C14_a_consent_that_permits_does_not_override_a_policy_that_denies() -> None:
    broad = replace(PERMIT, recipients=frozenset({"asst"}), purposes=frozenset({"microcredit-assessment"}))
    to_asst = replace(REQUEST, recipient="asst")
    assert decide(to_asst, REGISTRY, [broad], NOW).reason == "recipient-not-permitted"
    psy = _flow_request("asst", "aler", "care.encounter", "care-coordination", labels=frozenset({"PSY"}))
    everything = replace(PERMIT, purposes=frozenset({"care-coordination"}), recipients=frozenset({"aler"}))
    assert decide(psy, REGISTRY, [everything], NOW).reason == "sensitive-label-denied"


def test_C16_no_emergency_route_around_a_consent_flow() -> None:
    """F1 (to a private foundation) declares no emergency override: claiming the emergency purpose for it
    finds no flow, so it is denied; only flows that declare one (F10) cross without consent."""
    assert not next(f for f in REGISTRY.flows if f.id == "F1").emergency_override
    claimed = replace(REQUEST, purpose="emergency-social")
    assert decide(claimed, REGISTRY, [], NOW).reason == "recipient-not-permitted"
    emergency = _flow_request("aler", "pis", "emergency.social-event", "emergency-social")
    decision = decide(emergency, REGISTRY, [], NOW)
    assert decision.outcome == "permit" and decision.flow is not None and decision.flow.emergency_override
    violence = [f for f in REGISTRY.flows if f.purpose == "anti-violence-support"]
    assert violence and not any(f.emergency_override for f in violence)


def test_C17_data_masked_at_source_is_never_forwarded() -> None:
    visit = _flow_request("asst", "aler", "care.encounter", "care-coordination", masked_at_source=True)
    decision = decide(visit, REGISTRY, [], NOW)
    assert (decision.outcome, decision.reason) == ("deny", "masked-at-source")
    assert decide(replace(REQUEST, masked_at_source=True), REGISTRY, [PERMIT], NOW).reason == "masked-at-source"
