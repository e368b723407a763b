"""One adapter test suite, run against every partner's descriptor (:data:`gateway.partners.PARTNERS`).

What holds for any adapter is checked here once, not copied into each adapter's tests:

* the descriptor is what the core routes by (its decoder, its encoders);
* golden examples: the published files are those the descriptors generate; every valid one is accepted,
  decodes the same way twice into envelopes from the partner that survive the canonical round trip, and every
  invalid one is refused with exactly the problems its ``.expected.json`` lists, none echoing a codice fiscale;
* contract agreement: every valid JSON example meets the ``in.<partner>`` channel of the published AsyncAPI
  document, and what each encoder writes for the examples that reach it through a declared flow meets the
  recipient's channel;
* bounded fuzz (hypothesis): golden examples with values changed, keys dropped or added, bytes flipped or cut,
  and arbitrary bytes either decode into envelopes from the partner or are refused with a reason that locates
  each problem and echoes no codice fiscale; nothing else escapes.

What is particular to one partner (its message kinds, code lists, field-by-field translation) stays in that
adapter's tests (``tests/unit/test_adapter_*.py``).
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters._golden import CFS
from adapters.descriptor import OutboundLabels, PartnerDescriptor
from gateway.contracts.asyncapi import validate_against_channel
from gateway.contracts.golden import content_type, golden_examples
from gateway.contracts.kit import check_message
from gateway.identity.crosswalk import Crosswalk
from gateway.partners import PARTNERS
from gateway.pipeline import ledger
from gateway.policy import load_registry, minimise
from gateway.routing import DECODERS, ENCODERS, screen_identifiers
from schemas.envelope import Envelope, SubjectRef
from schemas.errors import DecodeError, FieldProblem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contracts" / "examples"
GENERATED = golden_examples()
REGISTRY = load_registry()
BY_NAME = {p.organisation: p for p in PARTNERS}
VALID = sorted(p for p in GENERATED if p.split("/")[1] == "valid")
INVALID = sorted(p for p in GENERATED if p.split("/")[1] == "invalid" and not p.endswith(".expected.json"))
SENDERS = [p for p in PARTNERS if p.decode is not None and p.examples is not None]


def _ids(partner: PartnerDescriptor) -> str:
    return partner.organisation


@functools.cache
def asyncapi() -> dict[str, Any]:
    return json.loads((ROOT / "contracts" / "asyncapi.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def decode(partner: PartnerDescriptor, body: bytes, media_type: str) -> list[Envelope]:
    """What the intake does with a partner's body: its decoder behind the strict JSON check, then the screen."""
    return screen_identifiers(DECODERS[partner.organisation](body, media_type))


def assert_a_rejection_with_a_reason(error: DecodeError) -> None:
    """A refusal the sender can act on: a kind, a detail, located problems, and no codice fiscale echoed."""
    assert error.kind in ("malformed", "contract"), error.kind
    assert error.detail
    assert error.problems
    told = [error.detail]
    for problem in error.problems:
        assert isinstance(problem, FieldProblem)
        assert problem.rule and problem.message
        assert problem.pointer == "" or problem.pointer.startswith("/"), problem.pointer
        told.append(problem.message)
    text = "\n".join(told).upper()
    assert not [cf for cf in CFS if cf in text], told


# --- the descriptor is what the core routes by ----------------------------------------------------------------


@pytest.mark.parametrize("partner", PARTNERS, ids=_ids)
def test_the_core_routes_by_the_descriptor(partner: PartnerDescriptor) -> None:
    if partner.decode is not None:
        assert inspect.unwrap(DECODERS[partner.organisation]) is partner.decode
    for delivery, encoder in partner.outbound().items():
        assert ENCODERS[delivery] is encoder
        signature = inspect.signature(encoder)
        assert len(signature.parameters) == 2, f"{delivery}: an encoder takes (envelope, labels)"


# --- golden examples ------------------------------------------------------------------------------------------


def test_checked_in_examples_match_the_generator() -> None:
    """Run ``write_golden_examples(Path("contracts/examples"))`` when this fails, and review the diff."""
    on_disk = {str(p.relative_to(EXAMPLES)): p.read_bytes() for p in EXAMPLES.rglob("*")
               if p.suffix in (".json", ".csv")}
    assert sorted(on_disk) == sorted(GENERATED)
    assert [path for path, content in GENERATED.items() if on_disk[path] != content] == []


@pytest.mark.parametrize("partner", SENDERS, ids=_ids)
def test_every_sender_has_valid_and_invalid_examples(partner: PartnerDescriptor) -> None:
    assert sum(p.startswith(f"{partner.organisation}/") for p in VALID) >= 2
    assert sum(p.startswith(f"{partner.organisation}/") for p in INVALID) >= 5


def _expected(path: str) -> str:
    return path.rsplit(".", 1)[0] + ".expected.json"


@pytest.mark.parametrize("path", VALID)
def test_a_valid_example_is_accepted_and_decodes_the_same_way_twice(path: str) -> None:
    partner = BY_NAME[path.split("/")[0]]
    body = (EXAMPLES / path).read_bytes()
    report = check_message(partner.organisation, body, content_type(path), REGISTRY)
    assert (report.valid, report.problems) == (True, [])
    assert report.messages
    envelopes = decode(partner, body, content_type(path))
    assert envelopes == decode(partner, body, content_type(path))
    for envelope in envelopes:
        assert envelope.sender == partner.organisation
        assert Envelope.model_validate(envelope.model_dump(mode="json")) == envelope  # the canonical round trip


@pytest.mark.parametrize("path", INVALID)
def test_an_invalid_example_is_refused_with_exactly_its_expected_problems(path: str) -> None:
    partner = BY_NAME[path.split("/")[0]]
    body = (EXAMPLES / path).read_bytes()
    expected = json.loads((EXAMPLES / _expected(path)).read_text("utf-8"))
    report = check_message(partner.organisation, body, content_type(path), REGISTRY)
    assert not report.valid
    assert [{"pointer": p["pointer"], "rule": p["rule"]} for p in report.problems] == expected
    with pytest.raises(DecodeError) as refused:
        decode(partner, body, content_type(path))
    assert_a_rejection_with_a_reason(refused.value)


# --- bodies that are no message at all -------------------------------------------------------------------------


def _first_valid(partner: PartnerDescriptor) -> bytes:
    assert partner.examples is not None
    return json.dumps(next(iter(partner.examples.valid().values()))).encode()


def _with_member(body: bytes, member: bytes) -> bytes:
    return body[:-1] + b", " + member + b"}"


MALFORMED: list[tuple[str, Any, str]] = [
    # (case id, body or how to make it from a valid message, rule)
    ("array", lambda b: b"[" + b + b"]", "type"),
    ("string", b'"segnalazione"', "type"),
    ("number", b"42", "type"),
    ("null", b"null", "type"),
    ("boolean", b"true", "type"),
    ("empty body", b"", "json"),
    ("whitespace", b"  \n", "json"),
    ("truncated", lambda b: b[:-10], "json"),
    ("trailing garbage", lambda b: b + b"}", "json"),
    ("two documents", lambda b: b * 2, "json"),
    ("single quotes", b"{'id_messaggio': 'x'}", "json"),
    ("NaN constant", lambda b: _with_member(b, b'"x": NaN'), "json"),
    ("-Infinity constant", lambda b: _with_member(b, b'"x": -Infinity'), "json"),
    ("invalid UTF-8", lambda b: _with_member(b, b'"x": "\xff\xfe"'), "utf-8"),
    ("UTF-16", lambda b: b.decode().encode("utf-16"), "utf-8"),
    ("UTF-8 BOM", lambda b: b"\xef\xbb\xbf" + b, "json"),
    ("2,000 nested arrays", b"[" * 2000 + b"]" * 2000, "max-depth"),
    ("200,000 nested arrays", b"[" * 200_000 + b"]" * 200_000, "max-depth"),
    ("2,000 nested objects in a member", lambda b: _with_member(b, b'"x": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2000),
     "max-depth"),
    ("integer of 5,000 digits", lambda b: _with_member(b, b'"x": ' + b"9" * 5000), "json"),
    ("number with a huge exponent", lambda b: _with_member(b, b'"x": 1e999999999'), "number-range"),
    ("number with a tiny exponent", lambda b: _with_member(b, b'"x": 1e-999999999'), "number-range"),
]


@pytest.mark.parametrize("partner", SENDERS, ids=_ids)
@pytest.mark.parametrize(("body", "rule"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_a_body_that_is_no_message_is_refused_as_malformed(partner: PartnerDescriptor, body: Any, rule: str) -> None:
    sent = body(_first_valid(partner)) if callable(body) else body
    with pytest.raises(DecodeError) as refused:
        decode(partner, sent, partner.content_type)
    assert refused.value.kind == "malformed"
    assert [(p.pointer, p.rule) for p in refused.value.problems] == [("", rule)]
    assert_a_rejection_with_a_reason(refused.value)


@pytest.mark.parametrize("partner", SENDERS, ids=_ids)
def test_a_member_named_twice_is_refused_where_it_is(partner: PartnerDescriptor) -> None:
    with pytest.raises(DecodeError) as refused:
        decode(partner, _with_member(_first_valid(partner), b'"x": 1, "x": 2'), partner.content_type)
    assert [(p.pointer, p.rule) for p in refused.value.problems] == [("/x", "duplicate-key")]


@pytest.mark.parametrize("partner", SENDERS, ids=_ids)
@pytest.mark.parametrize("media_type", ["text/plain", "application/xml", "", "application/x-www-form-urlencoded",
                                        "application/jsonx", "multipart/form-data; boundary=x"])
def test_a_content_type_the_partner_does_not_send_is_refused(partner: PartnerDescriptor, media_type: str) -> None:
    with pytest.raises(DecodeError) as refused:
        decode(partner, _first_valid(partner), media_type)
    assert refused.value.kind == "malformed"
    assert [(p.pointer, p.rule) for p in refused.value.problems] == [("", "content-type")]
    assert partner.content_type in refused.value.detail


@pytest.mark.parametrize("partner", SENDERS, ids=_ids)
@pytest.mark.parametrize("parameters", ["; charset=utf-8", ";charset=UTF-8 ", ""])
def test_the_partners_content_type_is_accepted_with_any_case_and_a_utf8_charset(
        partner: PartnerDescriptor, parameters: str) -> None:
    assert decode(partner, _first_valid(partner), f" {partner.content_type.upper()}{parameters}")


# --- contract agreement ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in VALID if p.endswith(".json")])
def test_a_valid_example_meets_the_partners_published_channel(path: str) -> None:
    organisation = path.split("/")[0]
    headers = {"content-type": content_type(path), "request-id": "req-1"}
    message = json.loads((EXAMPLES / path).read_bytes())
    assert validate_against_channel(asyncapi(), f"in.{organisation}", message, headers) == []


def _deliveries(delivery: tuple[str, str]) -> list[tuple[str, Envelope, OutboundLabels, dict[str, str]]]:
    """What the intake would hand the encoder of ``delivery`` (recipient, outbound type) for every valid golden
    example that reaches it through a declared flow, if the flow permitted it: topic, envelope, labels, headers."""
    tokenise = Crosswalk(b"k" * 32).token
    written = []
    for path in VALID:
        sender = BY_NAME[path.split("/")[0]]
        for envelope in decode(sender, GENERATED[path], content_type(path)):
            envelope = envelope.model_copy(update={"subject": SubjectRef(
                identifiers=envelope.subject.identifiers, pseudonym="psn-0123456789abcdef")})
            for flow in REGISTRY.flows_for(envelope.sender, envelope.message_type, envelope.purpose or ""):
                if (flow.recipient, flow.outbound_message_type) != delivery or (
                        envelope.recipients and flow.recipient not in envelope.recipients):
                    continue
                outgoing = minimise(envelope, flow, "gw-00000000-0000-0000-0000-000000000001", tokenise)
                labels = OutboundLabels("cns-1@1" if flow.consent.required else None, flow.obligations,
                                        flow.refrains)
                headers = dict(ledger.headers(outgoing.message_id, envelope.correlation_id, "req-1",
                                              flow.outbound_message_type, envelope.schema_version, flow.purpose))
                topic = ("s4.out." if flow.restricted_topic else "out.") + flow.recipient
                written.append((topic, outgoing, labels, headers))
    return written


@pytest.mark.parametrize(("partner", "delivery"), [(p, d) for p in PARTNERS for d in p.outbound()],
                         ids=lambda v: v.organisation if isinstance(v, PartnerDescriptor) else "/".join(v))
def test_what_an_encoder_writes_meets_the_recipients_published_channel(
        partner: PartnerDescriptor, delivery: tuple[str, str]) -> None:
    deliveries = _deliveries(delivery)
    assert deliveries, f"no golden example reaches {delivery}: add one"
    encode = partner.outbound()[delivery]
    for topic, outgoing, labels, headers in deliveries:
        value = encode(outgoing, labels)
        assert validate_against_channel(asyncapi(), topic, orjson.loads(value), headers) == [], topic
        assert encode(outgoing, labels) == value  # the same disclosure is written the same way


# --- bounded fuzz ---------------------------------------------------------------------------------------------

_TELLING = st.sampled_from([
    "", "2026", "2026-13-40", "2026-02-30T25:00:00+01:00", "#ref-1", "Patient/pat-1", "urn:uuid:1", "gwt_" + "A" * 24,
    CFS[0], CFS[0].lower(), CFS[0][:15] + "X", "STP0303080000001", "1e999999999", "-0", "NaN", "\u0000", "\ud800",
    {"resourceType": "Foo"}, {"resourceType": 7}, {"reference": "Patient/pat-1"}, [], {}, [{}],
])
"""Values that tell: dates, references, identifiers (valid, lower-case, with a wrong check character), numbers as
text, control characters and lone surrogates, FHIR-looking objects, empty containers."""

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40)
    | _TELLING,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member or an item of ``value``."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found.append((*prefix, key))
        found += _paths(item, (*prefix, key))
    return found


@st.composite
def _mutated(draw: st.DrawFn, partner: PartnerDescriptor) -> tuple[bytes, str]:
    """A golden example of ``partner`` spoiled in one of several ways, with the content type to send it as."""
    assert partner.examples is not None
    examples = partner.examples.valid()
    document = json.loads(json.dumps(examples[draw(st.sampled_from(sorted(examples)))]))
    how = draw(st.sampled_from(["change", "drop", "add", "flip", "cut", "bytes", "content-type"]))
    media_type = partner.content_type
    if how in ("change", "drop", "add"):
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(_paths(document) or [("x",)]))
            target: Any = document
            for key in path[:-1]:
                target = target[key]
            if how == "drop" and isinstance(target, dict):
                del target[path[-1]]
            elif how == "add" and isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=12))] = copy.deepcopy(draw(_JSON))
            else:
                target[path[-1]] = copy.deepcopy(draw(_JSON))  # a fresh value: drawn ones are shared
            if not isinstance(document, dict) or not document:
                break
        return json.dumps(document).encode(), media_type
    body = json.dumps(document).encode()
    if how == "flip":
        at = draw(st.integers(0, len(body) - 1))
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1:], media_type
    if how == "cut":
        return body[:draw(st.integers(0, len(body) - 1))], media_type
    if how == "content-type":
        return body, draw(st.sampled_from(["text/plain", "application/xml", "", "application/fhir+xml",
                                           "application/json; charset=latin-1", "text/csv"]))
    return draw(st.binary(max_size=300)), media_type


@pytest.mark.fuzz
@pytest.mark.parametrize("partner", SENDERS, ids=_ids)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_input_escapes_as_anything_but_envelopes_or_a_rejection_with_a_reason(
        partner: PartnerDescriptor, data: st.DataObject) -> None:
    body, media_type = data.draw(_mutated(partner))
    try:
        envelopes = decode(partner, body, media_type)
    except DecodeError as error:
        assert_a_rejection_with_a_reason(error)
    else:
        assert envelopes and all(isinstance(e, Envelope) and e.sender == partner.organisation for e in envelopes)
