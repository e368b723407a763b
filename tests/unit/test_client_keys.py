"""Issue 10 point 14: which public keys a client may register for ``private_key_jwt``, and a client authenticates
with a secret or with keys, never both (also in the clients file)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from gateway.auth import PartnerClient, hash_client_secret
from gateway.auth.client_keys import assertion_keys, public_key_document, registered_key_set
from gateway.bootstrap import load_clients

EC = ECKey.generate_key("P-256", private=True)
ED = OKPKey.generate_key("Ed25519", private=True)
RSA = RSAKey.generate_key(2048, private=True)


def public(key: Any) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def test_14_public_ec_ed25519_and_rsa_keys_are_registered_with_a_kid() -> None:
    registered = json.loads(registered_key_set({"keys": [public(EC), public(ED), public(RSA)]}))
    assert [k["kty"] for k in registered["keys"]] == ["EC", "OKP", "RSA"]
    assert all(k["kid"] and "d" not in k for k in registered["keys"])
    assert len(assertion_keys(json.dumps(registered)).keys) == 3
    single = json.loads(registered_key_set(public(EC)))  # a lone JWK is a set of one
    assert [k["kid"] for k in single["keys"]] == [EC.thumbprint()]


def _short_rsa() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return public(RSAKey.generate_key(1024, private=False))


@pytest.mark.parametrize(("entry", "why"), [
    (dict(EC.as_dict(private=True)), "private"),
    (dict(OctKey.generate_key(256).as_dict()), "EC P-256, Ed25519 or RSA"),
    (public(ECKey.generate_key("P-384")), "P-256"),
    (public(OKPKey.generate_key("X25519")), "Ed25519"),
    ({**public(EC), "alg": "HS256"}, "not accepted"),
    ({**public(RSA), "alg": "RS512"}, "not accepted"),
    ({**public(EC), "use": "enc"}, "signing"),
    ({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "valid JWK"),
], ids=["private", "symmetric", "p384", "x25519", "hs256-alg", "rs512-alg", "encryption-key", "garbage"])
def test_14_keys_that_could_not_verify_an_allowed_algorithm_are_refused(entry: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        registered_key_set(entry)


def test_14_rsa_keys_need_2048_bits() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="2048"):
            registered_key_set(_short_rsa())


def test_14_empty_sets_and_duplicate_kids_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        registered_key_set({"keys": []})
    with pytest.raises(ValueError, match="same kid"):
        registered_key_set({"keys": [public(EC), public(EC)]})


def test_14_pem_public_keys_are_read_and_private_ones_refused() -> None:
    assert public_key_document(EC.as_pem(private=False).decode())["kty"] == "EC"
    assert public_key_document(RSA.as_pem(private=False).decode())["kty"] == "RSA"
    assert public_key_document(json.dumps(public(ED)))["kty"] == "OKP"
    with pytest.raises(ValueError, match="private key"):
        public_key_document(EC.as_pem(private=True).decode())
    with pytest.raises(ValueError):
        public_key_document("not a key")


def test_14_a_client_has_a_secret_or_keys_never_both_nor_neither() -> None:
    keys = registered_key_set(public(EC))
    secret = hash_client_secret("s3cret")
    assert PartnerClient("a", secret, "aler", "system", frozenset({"status:read"})).auth_method == "client_secret"
    with_keys = PartnerClient("b", None, "aler", "system", frozenset({"status:read"}), public_jwks=keys)
    assert with_keys.auth_method == "private_key_jwt"
    with pytest.raises(ValueError, match="not both"):
        PartnerClient("c", secret, "aler", "system", frozenset({"status:read"}), public_jwks=keys)
    with pytest.raises(ValueError, match="not both"):
        PartnerClient("d", None, "aler", "system", frozenset({"status:read"}))
    with pytest.raises(ValueError, match="private"):
        PartnerClient("e", None, "aler", "system", frozenset(), public_jwks=json.dumps(EC.as_dict(private=True)))


def test_14_the_clients_file_registers_keys_or_secrets(tmp_path: Path) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(json.dumps({"clients": [
        {"client_id": "k", "organisation": "aler", "role": "system", "scopes": ["status:read"],
         "public_jwks": {"keys": [public(EC)]}},
        {"client_id": "s", "organisation": "aler", "role": "system", "scopes": ["status:read"],
         "secret_hash": hash_client_secret("x")},
    ]}), encoding="utf-8")  # JSON is YAML
    by_id = {c.client_id: c for c in load_clients(path)}
    assert (by_id["k"].auth_method, by_id["s"].auth_method) == ("private_key_jwt", "client_secret")
    path.write_text(json.dumps({"clients": [
        {"client_id": "both", "organisation": "aler", "role": "system", "scopes": ["status:read"],
         "secret_hash": hash_client_secret("x"), "public_jwks": public(EC)}]}), encoding="utf-8")
    with pytest.raises(ValueError, match="not both"):
        load_clients(path)


def test_14_the_example_clients_file_shows_a_client_with_keys() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "clients.example.yaml"
    methods = {c.client_id: c.auth_method for c in load_clients(example)}
    assert methods["regione-system"] == "private_key_jwt" and methods["aler-system"] == "client_secret"


def test_14_the_openapi_document_names_every_token_endpoint_auth_method() -> None:
    from gateway.api import openapi_document
    from gateway.auth._authlib_server import TOKEN_ENDPOINT_AUTH_METHODS

    token = openapi_document()["paths"]["/oauth/token"]["post"]
    assert token["x-token-endpoint-auth-methods-supported"] == list(TOKEN_ENDPOINT_AUTH_METHODS)
    assert "private_key_jwt" in TOKEN_ENDPOINT_AUTH_METHODS
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert form["client_assertion_type"]["enum"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assert "client_assertion" in form
