"""The public names of the gateway's packages are pinned: adding or dropping one is a deliberate change here."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_SURFACE: dict[str, list[str]] = {
    "gateway.bus": [
        "Bus",
        "BusConsumer",
        "BusError",
        "BusRecord",
        "BusUnavailable",
        "CommitFailed",
        "EmbeddedBus",
        "KafkaBus",
        "KafkaSecurity",
        "OutgoingRecord",
        "UnknownTopicError",
    ],
    "gateway.auth": [
        "AuthError",
        "ClientDirectory",
        "ExpiredToken",
        "InsufficientScope",
        "InvalidToken",
        "MissingToken",
        "PartnerClient",
        "Principal",
        "SUPPORTED_ALGORITHMS",
        "SigningKey",
        "TokenIssuer",
        "TokenValidator",
        "auth_error_response",
        "bearer_principal_dependency",
        "generate_signing_key",
        "hash_client_secret",
        "principal_from_request",
        "verify_client_secret",
    ],
    "gateway.policy": [
        "ConsentRecord",
        "Decision",
        "DecisionRequest",
        "DenialReason",
        "Flow",
        "PolicyRegistry",
        "decide",
        "load_registry",
        "minimise",
        "sender_reason_class",
    ],
    "gateway.store": ["MessageStatus", "OutboxRow", "PipelineStore", "PipelineTransaction", "Store", "StoreTransaction",
                      "Subject"],
    "gateway.pipeline": ["Intake", "Relay", "Submission", "status_message"],
    "schemas": [
        "Envelope",
        "Identifier",
        "MESSAGE_TYPES",
        "SensitivityLabel",
        "SubjectRef",
        "TenancyArrearsReferral",
        "validate_payload",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_SURFACE))
def test_all_lists_exactly_the_pinned_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC_SURFACE[module_name])


@pytest.mark.parametrize("module_name", sorted(PUBLIC_SURFACE))
def test_every_name_in_all_exists_and_is_listed_once(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert len(set(module.__all__)) == len(module.__all__)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("module_name", sorted(PUBLIC_SURFACE))
def test_star_import_gives_exactly_the_public_names(module_name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # noqa: S102 - module names are the constants above
    namespace.pop("__builtins__", None)
    assert sorted(namespace) == sorted(PUBLIC_SURFACE[module_name])
