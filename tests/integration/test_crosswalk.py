"""The crosswalk's tokens a partner can quote back: minted in minimisation, recorded in the intake transaction,
resolved only for the partner they were minted for, and giving a partner's own identifier back to its owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.errors import ContractViolation
from gateway.identity.crosswalk import (
    Crosswalk,
    MintedToken,
    recording,
    restore_quoted,
    seal,
    subject_of_quoted_token,
    unseal,
)
from gateway.policy import load_registry, minimise
from gateway.policy.registry import Flow
from gateway.store import Store, Subject
from gateway.store.tables import crosswalk_tokens
from schemas.envelope import Envelope, Identifier, SubjectRef

KEY = b"k" * 32
CASE_ID = "MI-SST-2026-000123"
CF = "RSSMRA85T10A562S"
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
CROSSWALK = Crosswalk(KEY)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    made = Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", KEY)
    await made.migrate()
    try:
        yield made
    finally:
        await made.close()


def flow(flow_id: str) -> Flow:
    return next(f for f in load_registry().flows if f.id == flow_id)


def case_event(pseudonym: str | None = None) -> Envelope:
    return Envelope(
        message_id="ev-1", correlation_id="corr-f2-1", message_type="social.case-event", sender="comune",
        subject=SubjectRef(identifiers=(Identifier(system="cf", value=CF),
                                        Identifier(system="comune-case", value=CASE_ID)), pseudonym=pseudonym),
        purpose="social-case-management", occurred_at=NOW,
        payload={"case_id": CASE_ID, "event": "status", "status": "in-charge", "municipio": 7,
                 "service_area": "elderly"},
    )


async def subject_with_case_tokens(store: Store) -> tuple[Subject, list[MintedToken], Envelope]:
    """A subject, and the F3 message ALER receives about them, with the tokens minted for it recorded."""
    async with store.transaction() as tx:
        subject = await tx.subject("cf", CF, create=True)
        assert subject is not None
        minted: list[MintedToken] = []
        to_aler = minimise(case_event(subject.pseudonym), flow("F3"), "gw-1",
                           recording(CROSSWALK.token, subject.pseudonym, minted))
        await tx.record_tokens(minted)
    return subject, minted, to_aler


def test_minimisation_reports_every_token_it_mints_with_what_it_stands_for() -> None:
    minted: list[MintedToken] = []

    out = minimise(case_event("sbj_1"), flow("F3"), "gw-1", recording(CROSSWALK.token, "sbj_1", minted))

    by_system = {m.system: m for m in minted}
    assert set(by_system) == {"subject", "comune-case"}
    assert by_system["comune-case"].token == out.payload["case_id"]
    assert by_system["comune-case"].value == CASE_ID
    assert by_system["subject"].token == out.subject.first("gateway-token")
    assert by_system["subject"].value is None
    assert {m.recipient for m in minted} == {"aler"} and {m.subject_pseudonym for m in minted} == {"sbj_1"}


async def test_a_token_quoted_by_the_partner_it_was_minted_for_resolves_to_the_person(store: Store) -> None:
    subject, _, to_aler = await subject_with_case_tokens(store)
    case_token = to_aler.payload["case_id"]
    subject_token = to_aler.subject.first("gateway-token")
    assert subject_token is not None

    async with store.transaction() as tx:
        by_case = await tx.subject_of_token(case_token, "aler")
        by_subject = await tx.subject_of_token(subject_token, "aler")
        identifier = await tx.token_identifier(case_token, "aler")
        person_only = await tx.token_identifier(subject_token, "aler")

    assert by_case == subject and by_subject == subject
    assert identifier == ("comune-case", CASE_ID)
    assert person_only is None


async def test_a_token_minted_for_another_partner_resolves_to_nothing(store: Store) -> None:
    _, _, to_aler = await subject_with_case_tokens(store)
    case_token = to_aler.payload["case_id"]

    async with store.transaction() as tx:
        quoted_by_fwa = (await tx.subject_of_token(case_token, "fwa"), await tx.token_identifier(case_token, "fwa"))
        unknown = (await tx.subject_of_token("gwt_" + "a" * 24, "aler"),
                   await tx.token_identifier("gwt_" + "a" * 24, "aler"))

    assert quoted_by_fwa == (None, None)
    assert unknown == (None, None)


async def test_recording_the_same_tokens_again_changes_nothing(store: Store) -> None:
    subject, minted, _ = await subject_with_case_tokens(store)

    async with store.transaction() as tx:
        await tx.record_tokens([*minted, *minted])
        rows = (await tx.conn.execute(select(crosswalk_tokens))).all()

    assert len(rows) == len(minted) == 2
    assert {r.subject_pseudonym for r in rows} == {subject.pseudonym}


async def test_the_database_never_holds_the_case_id_in_clear(store: Store, tmp_path: Path) -> None:
    await subject_with_case_tokens(store)

    async with store.transaction() as tx:
        sealed = (await tx.conn.execute(select(crosswalk_tokens.c.sealed_value))).scalars().all()
    on_disk = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())  # noqa: ASYNC240

    assert [v for v in sealed if v is not None]  # the case id is kept, sealed
    assert CASE_ID.encode() not in on_disk and CF.encode() not in on_disk


def test_a_sealed_identifier_opens_only_under_its_own_token_and_key() -> None:
    sealed = seal(KEY, "gwt_one", CASE_ID)

    assert unseal(KEY, "gwt_one", sealed) == CASE_ID
    assert unseal(KEY, "gwt_two", sealed) is None
    assert unseal(b"x" * 32, "gwt_one", sealed) is None


async def test_erasing_a_subject_makes_their_tokens_lead_nowhere(store: Store) -> None:
    subject, _, to_aler = await subject_with_case_tokens(store)

    async with store.transaction() as tx:
        assert await tx.erase_subject(subject.pseudonym)
        found = await tx.subject_of_token(to_aler.payload["case_id"], "aler")

    assert found is None


def quoting(token: str, *others: Identifier) -> SubjectRef:
    return SubjectRef(identifiers=(*others, Identifier(system="gateway-token", value=token)))


async def test_a_foreign_or_unknown_token_is_refused_with_the_same_problem(store: Store) -> None:
    _, _, to_aler = await subject_with_case_tokens(store)
    problems = []

    async with store.transaction() as tx:
        for token, quoted_by in ((to_aler.payload["case_id"], "fwa"), ("gwt_" + "b" * 24, "aler")):
            with pytest.raises(ContractViolation) as raised:
                await subject_of_quoted_token(tx, quoting(token), quoted_by)
            problems.append((raised.value.detail, [p.as_dict() for p in raised.value.problems]))

    assert problems[0] == problems[1]
    assert problems[0][1][0]["rule"] == "unknown-token"
    assert problems[0][1][0]["pointer"] == "/subject/identifiers/0/value"


async def test_a_message_quoting_no_token_is_left_to_the_other_identifiers(store: Store) -> None:
    plain = SubjectRef(identifiers=(Identifier(system="cf", value=CF),))

    async with store.transaction() as tx:
        assert await subject_of_quoted_token(tx, plain, "aler") is None
        assert await restore_quoted(tx, plain, "aler") == plain


def eviction_from_aler(subject: SubjectRef) -> Envelope:
    return Envelope(
        message_id="ev-9", correlation_id="corr-9", message_type="tenancy.eviction-milestone", sender="aler",
        subject=subject, purpose="housing-support", occurred_at=NOW,
        payload={"stage": "formal-notice", "deadline": "2026-12-31", "quartiere": "san-siro", "municipio": 7},
    )


async def test_the_comune_gets_its_own_case_id_back_and_no_one_else_does(store: Store) -> None:
    subject, _, to_aler = await subject_with_case_tokens(store)
    quoted = quoting(to_aler.payload["case_id"], Identifier(system="cf", value=CF))

    async with store.transaction() as tx:
        assert await subject_of_quoted_token(tx, quoted, "aler") == subject
        restored = await restore_quoted(tx, quoted, "aler")
    envelope = eviction_from_aler(restored.model_copy(update={"pseudonym": subject.pseudonym}))
    with_case = ["subject.cf", "subject.comune-case", "stage", "deadline", "quartiere", "municipio"]
    to_comune = Flow(**{**flow("F9").__dict__, "allowed_fields": tuple(with_case)})
    to_fwa = Flow(**{**flow("F9-fwa").__dict__, "allowed_fields": tuple(with_case)})

    assert restored.first("comune-case") == CASE_ID and restored.first("gateway-token") is None
    assert minimise(envelope, to_comune, "gw-2").subject.first("comune-case") == CASE_ID
    assert minimise(envelope, to_fwa, "gw-3").subject.first("comune-case") is None
    assert minimise(envelope, to_fwa, "gw-3").subject.first("cf") == CF
