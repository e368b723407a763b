"""The console's single sign-on without a provider: how groups map to an organisation and roles (fail closed),
which subject an officer gets, the sealing of the sign-in in progress, and the settings that must go together.
The sign-in itself is tested against a real Keycloak in ``tests/integration/test_console_sso.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.console.oidc import PendingSignIns, SignInRefused, claim_values, console_subject, grant_for
from gateway.settings import ConsoleOidcSettings, OidcGroupMapping

MAPPINGS = (
    OidcGroupMapping(group="/aler/privacy-officers", organisation="aler", roles=("privacy-officer",)),
    OidcGroupMapping(group="/aler/erasure", organisation="aler", roles=("erasure-officer",)),
    OidcGroupMapping(group="/comune/privacy-officers", organisation="comune", roles=("privacy-officer",)),
)


def test_mapped_groups_give_one_organisation_and_the_union_of_roles() -> None:
    grant = grant_for(["/aler/privacy-officers", "/aler/erasure", "/aler/front-office"], MAPPINGS)
    assert grant.organisation == "aler"
    assert grant.roles == {"privacy-officer", "erasure-officer"}


@pytest.mark.parametrize(("groups", "reason"), [
    ([], "no-mapped-group"),
    (["/aler/front-office", "/ALER/privacy-officers"], "no-mapped-group"),  # exact match only
    (["/aler/privacy-officers", "/comune/privacy-officers"], "several-organisations"),
])
def test_sign_in_is_refused_unless_the_groups_name_exactly_one_organisation(groups: list[str], reason: str) -> None:
    with pytest.raises(SignInRefused) as refused:
        grant_for(groups, MAPPINGS)
    assert refused.value.reason == reason


def test_claim_values_walk_into_objects_and_keep_strings_only() -> None:
    claims = {"groups": ["/a", 3, "/b"], "realm_access": {"roles": ["dpo"]}, "role": "one"}
    assert claim_values(claims, "groups") == ["/a", "/b"]
    assert claim_values(claims, "realm_access.roles") == ["dpo"]
    assert claim_values(claims, "role") == ["one"]
    assert claim_values(claims, "realm_access.missing") == []
    assert claim_values(claims, "groups.deeper") == []


def test_the_subject_is_the_providers_uuid_or_a_digest_never_a_tax_code() -> None:
    assert console_subject("0B5C8E2A-1111-4222-8333-444455556666") == "oidc:0b5c8e2a-1111-4222-8333-444455556666"
    digested = console_subject("RSSMRA85T10A562S")
    assert digested.startswith("oidc:sha256:") and "RSSMRA" not in digested and len(digested) <= 64


def test_a_sealed_sign_in_opens_only_unaltered_and_under_the_same_secret() -> None:
    pending = PendingSignIns("secret-one")
    sealed = pending.seal({"_state_console_abc": {"data": {"nonce": "n"}}})
    assert pending.open(sealed) == {"_state_console_abc": {"data": {"nonce": "n"}}}
    assert "nonce" not in sealed
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    assert pending.open(flipped) is None
    assert PendingSignIns("secret-two").open(sealed) is None
    assert pending.open("not-base64!") is None


def test_single_sign_on_settings_must_be_complete(tmp_path: Path) -> None:
    assert not ConsoleOidcSettings().enabled
    secret = tmp_path / "secret"
    secret.write_text("s")
    with pytest.raises(ValidationError, match="CLIENT_SECRET_FILE"):
        ConsoleOidcSettings(issuer="https://id.example/realms/gateway", mappings=MAPPINGS)
    with pytest.raises(ValidationError, match="MAPPINGS"):
        ConsoleOidcSettings(issuer="https://id.example/realms/gateway", client_secret_file=secret)
    with pytest.raises(ValidationError, match="openid"):
        ConsoleOidcSettings(issuer="https://id.example/realms/gateway", client_secret_file=secret,
                            mappings=MAPPINGS, scopes="profile")
    made = ConsoleOidcSettings(issuer="https://id.example/realms/gateway/", client_secret_file=secret,
                               mappings=MAPPINGS)
    assert made.enabled and made.issuer == "https://id.example/realms/gateway"


def test_mappings_are_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s")
    monkeypatch.setenv("GATEWAY_CONSOLE_OIDC_ISSUER", "https://id.example/realms/gateway")
    monkeypatch.setenv("GATEWAY_CONSOLE_OIDC_CLIENT_SECRET_FILE", str(secret))
    monkeypatch.setenv("GATEWAY_CONSOLE_OIDC_MAPPINGS",
                       '[{"group": "/gateway/data-protection-office", "organisation": "gateway-privacy",'
                       ' "roles": ["privacy-officer", "erasure-officer"]}]')
    from gateway.settings import GatewaySettings

    oidc = GatewaySettings().console_oidc
    assert oidc.mappings == (OidcGroupMapping(group="/gateway/data-protection-office",
                                              organisation="gateway-privacy",
                                              roles=("privacy-officer", "erasure-officer")),)


def test_a_mapping_to_an_unknown_organisation_stops_the_console_from_starting(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from gateway.console.oidc import configure_single_sign_on
    from gateway.settings import GatewaySettings

    secret = tmp_path / "secret"
    secret.write_text("s")
    wrong = OidcGroupMapping(group="/x", organisation="alre", roles=("privacy-officer",))
    oidc = ConsoleOidcSettings(issuer="https://id.example/realms/gateway", client_secret_file=secret,
                               mappings=(*MAPPINGS, wrong))
    with pytest.raises(ValueError, match="alre"):
        configure_single_sign_on(FastAPI(), GatewaySettings(console_oidc=oidc), ["aler", "comune"])
    app = FastAPI()
    configure_single_sign_on(app, GatewaySettings(console_oidc=oidc.model_copy(update={"mappings": MAPPINGS})),
                             ["aler", "comune"])
    assert app.state.console_sign_in_options == (("login.sso", "/console/sso/start"),)
    assert "form-action 'self' https://id.example;" in app.state.console_csp
