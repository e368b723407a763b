"""The demo's clients come from the registry and the partners' descriptors, not from a list of partner names."""

from __future__ import annotations

from gateway.demo import _scopes
from gateway.partners import descriptor
from gateway.policy import load_registry


def test_every_partner_of_the_registry_gets_a_demo_client_with_the_scopes_its_adapter_allows() -> None:
    registry = load_registry()
    scopes = _scopes(registry)
    assert set(scopes) == {*registry.exchanging(), "gateway-privacy"}
    for organisation in registry.exchanging():
        partner = descriptor(organisation)
        sends = partner is not None and partner.decode is not None
        assert ("messages:submit" in scopes[organisation]) is sends, organisation
        assert {"status:read", "inbox:read"} <= set(scopes[organisation])
    # Deny by default: consents are recorded by the one client the story gives them to, nobody else.
    assert [o for o, granted in scopes.items() if "consent:write" in granted] == ["aler"]
    assert "messages:submit" not in scopes["pis"]  # the emergency social service only receives
    assert scopes["gateway-privacy"] == ("audit:verify", "privacy:report", "privacy:erase")
