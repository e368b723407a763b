"""Unit tests for partner authentication: token endpoint, token validation, scopes."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey
from starlette.exceptions import StarletteDeprecationWarning
from starlette.responses import Response

from gateway.auth import (
    AuthError,
    ExpiredToken,
    InsufficientScope,
    InvalidToken,
    MissingToken,
    PartnerClient,
    Principal,
    TokenIssuer,
    TokenValidator,
    auth_error_response,
    bearer_principal_dependency,
    generate_signing_key,
    hash_client_secret,
    principal_from_request,
    verify_client_secret,
)

with warnings.catch_warnings():
    # starlette's test client warns that it prefers httpx2 over httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ISSUER = "https://gateway.quartieri.example"
AUDIENCE = "https://gateway.quartieri.example/api"
NOW = 1_750_000_000.0
TTL = 300

ALER_ID = "aler-community"
ALER_SECRET = "aler-secret-value-0123456789"
PRIVACY_ID = "privacy-office"
PRIVACY_SECRET = "privacy-secret-value-9876543210"
ALER_SCOPES = frozenset({"messages:submit", "status:read", "inbox:read"})


class FakeClock:
    """A settable clock returning Unix time."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clients() -> list[PartnerClient]:
    return [
        PartnerClient(
            client_id=ALER_ID,
            secret_hash=hash_client_secret(ALER_SECRET),
            organisation="aler",
            role="community-manager",
            scopes=ALER_SCOPES,
        ),
        PartnerClient(
            client_id=PRIVACY_ID,
            secret_hash=hash_client_secret(PRIVACY_SECRET),
            organisation="gateway-privacy",
            role="privacy-officer",
            scopes=frozenset({"privacy:audit", "consent:read"}),
        ),
    ]


@pytest.fixture(scope="module")
def signing_key() -> OKPKey:
    return generate_signing_key()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clients: list[PartnerClient], signing_key: OKPKey, clock: FakeClock) -> TokenIssuer:
    return TokenIssuer(clients, signing_key, ISSUER, AUDIENCE, ttl_seconds=TTL, clock=clock)


@pytest.fixture
def validator(issuer: TokenIssuer, clock: FakeClock) -> TokenValidator:
    return TokenValidator(issuer.public_jwks(), ISSUER, AUDIENCE, clock=clock)


def _token_app(issuer: TokenIssuer) -> FastAPI:
    app = FastAPI()

    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        return await issuer.token_response(request)

    return app


@pytest.fixture
def client(issuer: TokenIssuer) -> Iterator[TestClient]:
    with TestClient(_token_app(issuer), base_url="https://testserver") as test_client:
        yield test_client


def _b64json(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def _b64encode_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _issue(client: TestClient, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = client.post("/oauth/token", data=data, auth=(ALER_ID, ALER_SECRET))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": ALER_ID,
        "aud": AUDIENCE,
        "exp": int(NOW) + TTL,
        "iat": int(NOW),
        "jti": "test-jti",
        "client_id": ALER_ID,
        "scope": "status:read",
        "org": "aler",
        "role": "community-manager",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: OKPKey | ECKey, claims: dict[str, Any], **header: Any) -> str:
    alg = "Ed25519" if isinstance(key, OKPKey) else "ES256"
    full_header = {"alg": alg, "typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(full_header, claims, key=key, algorithms=[alg])


def _rejects(validator: TokenValidator, header: str | None, error_type: type[AuthError]) -> AuthError:
    with pytest.raises(error_type) as caught:
        validator.validate(header)
    error = caught.value
    if header:
        token = header.partition(" ")[2].strip()
        if token:
            for text in (error.detail, str(error), error.www_authenticate()):
                assert token not in text
                for segment in token.split("."):
                    assert len(segment) < 8 or segment not in text
    return error


# --- client secrets ---------------------------------------------------------------------------


def test_client_secret_hash_round_trip() -> None:
    hashed = hash_client_secret("correct horse")
    assert hashed.startswith("scrypt$16384$8$1$")
    assert "correct horse" not in hashed
    assert verify_client_secret("correct horse", hashed)
    assert not verify_client_secret("correct horsf", hashed)
    assert not verify_client_secret("correct horse", "scrypt$16384$8$1$bad")
    assert not verify_client_secret("correct horse", "plain-text-secret")
    assert hash_client_secret("correct horse") != hashed  # salted


def test_partner_client_rejects_unhashed_secret_and_bad_scopes() -> None:
    with pytest.raises(ValueError, match="secret_hash"):
        PartnerClient("x", "plain-secret", "aler", "system", frozenset({"status:read"}))
    with pytest.raises(ValueError, match="invalid scopes"):
        PartnerClient("x", hash_client_secret("s"), "aler", "system", frozenset({'bad"scope'}))


def test_partner_client_repr_hides_secret_hash(clients: list[PartnerClient]) -> None:
    assert clients[0].secret_hash not in repr(clients[0])


def test_duplicate_client_ids_are_refused(clients: list[PartnerClient], signing_key: OKPKey) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        TokenIssuer([clients[0], clients[0]], signing_key, ISSUER, AUDIENCE)


# --- token endpoint ---------------------------------------------------------------------------


def test_token_issued_with_client_secret_basic(client: TestClient) -> None:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(ALER_ID, ALER_SECRET))

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == TTL
    assert set(body["scope"].split()) == ALER_SCOPES
    assert "refresh_token" not in body

    header_segment, payload_segment, _ = body["access_token"].split(".")
    header = _b64json(header_segment)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "Ed25519"
    assert header["kid"]
    claims = _b64json(payload_segment)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == ALER_ID
    assert claims["client_id"] == ALER_ID
    assert claims["aud"] == AUDIENCE
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + TTL
    assert claims["jti"]
    assert claims["org"] == "aler"
    assert claims["role"] == "community-manager"
    assert set(claims["scope"].split()) == ALER_SCOPES


def test_token_issued_with_client_secret_post(client: TestClient) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": PRIVACY_ID, "client_secret": PRIVACY_SECRET},
    )

    assert response.status_code == 200, response.text
    claims = _b64json(response.json()["access_token"].split(".")[1])
    assert claims["sub"] == PRIVACY_ID
    assert claims["org"] == "gateway-privacy"
    assert claims["role"] == "privacy-officer"
    assert claims["scope"] == "consent:read privacy:audit"


def test_basic_auth_with_client_id_repeated_in_body_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": ALER_ID}, auth=(ALER_ID, ALER_SECRET)
    )
    assert response.status_code == 200, response.text


def test_each_token_has_its_own_jti(client: TestClient) -> None:
    first = _b64json(_issue(client).split(".")[1])
    second = _b64json(_issue(client).split(".")[1])
    assert first["jti"] != second["jti"]


def test_ttl_is_configurable(clients: list[PartnerClient], signing_key: OKPKey, clock: FakeClock) -> None:
    issuer = TokenIssuer(clients, signing_key, ISSUER, AUDIENCE, ttl_seconds=60, clock=clock)
    with TestClient(_token_app(issuer), base_url="https://testserver") as test_client:
        response = test_client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(ALER_ID, ALER_SECRET)
        )
    assert response.json()["expires_in"] == 60
    claims = _b64json(response.json()["access_token"].split(".")[1])
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"auth": (ALER_ID, "wrong-secret")},
        {"data": {"client_id": ALER_ID, "client_secret": "wrong-secret"}},
    ],
    ids=["basic", "post"],
)
def test_wrong_secret_is_invalid_client(client: TestClient, kwargs: dict[str, Any]) -> None:
    data = {"grant_type": "client_credentials", **kwargs.pop("data", {})}
    response = client.post("/oauth/token", data=data, **kwargs)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"
    assert "wrong-secret" not in response.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"auth": ("nobody", ALER_SECRET)},
        {"data": {"client_id": "nobody", "client_secret": ALER_SECRET}},
        {},
    ],
    ids=["basic", "post", "no-credentials"],
)
def test_unknown_or_missing_client_is_invalid_client(client: TestClient, kwargs: dict[str, Any]) -> None:
    data = {"grant_type": "client_credentials", **kwargs.pop("data", {})}
    response = client.post("/oauth/token", data=data, **kwargs)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers


@pytest.mark.parametrize("credentials", [b"\xff\xfe:secret", b"no-colon", b""], ids=["not-utf8", "no-secret", "empty"])
def test_undecodable_basic_credentials_are_invalid_client(client: TestClient, credentials: bytes) -> None:
    header = "Basic " + base64.b64encode(credentials).decode()
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_unknown_client_and_wrong_secret_look_the_same(client: TestClient) -> None:
    unknown = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("nobody", "x"))
    wrong = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(ALER_ID, "x"))
    assert unknown.json() == wrong.json()


def test_unsupported_grant_type(client: TestClient) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "u", "password": "p"},
        auth=(ALER_ID, ALER_SECRET),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.headers["cache-control"] == "no-store"


def test_scope_is_narrowed_to_the_request(client: TestClient, validator: TokenValidator) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "status:read"},
        auth=(ALER_ID, ALER_SECRET),
    )

    assert response.status_code == 200
    assert response.json()["scope"] == "status:read"
    principal = validator.validate("Bearer " + response.json()["access_token"])
    assert principal.scopes == frozenset({"status:read"})


@pytest.mark.parametrize("scope", ["privacy:audit", "status:read privacy:audit", 'bad"scope'])
def test_scope_outside_the_client_registration_is_refused(client: TestClient, scope: str) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(ALER_ID, ALER_SECRET),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_invalid_scope_is_reported_only_after_client_authentication(client: TestClient) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "privacy:audit"},
        auth=(ALER_ID, "wrong"),
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("content", "headers", "kwargs"),
    [
        ('{"grant_type": "client_credentials"}', {"content-type": "application/json"}, {}),
        ("grant_type=client_credentials&grant_type=client_credentials", None, {}),
        ("scope=status%3Aread", None, {}),
        (
            f"grant_type=client_credentials&client_id={ALER_ID}&client_secret={ALER_SECRET}",
            None,
            {"auth": (ALER_ID, ALER_SECRET)},
        ),
        ("grant_type=client_credentials&client_id=other", None, {}),
        ("grant_type=client_credentials&" + "x" * 9000, None, {}),
        ("grant_type=client_credentials&scope=%ff", None, {}),
    ],
    ids=[
        "json-body",
        "repeated-parameter",
        "missing-grant-type",
        "two-auth-methods",
        "two-client-ids",
        "too-large",
        "not-utf8",
    ],
)
def test_malformed_token_request_is_invalid_request(
    client: TestClient, content: str, headers: dict[str, str] | None, kwargs: dict[str, Any]
) -> None:
    request_headers = headers or {"content-type": "application/x-www-form-urlencoded"}
    if "auth" not in kwargs:
        kwargs["auth"] = (ALER_ID, ALER_SECRET)
    response = client.post("/oauth/token", content=content, headers=request_headers, **kwargs)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


def test_token_endpoint_requires_https(issuer: TokenIssuer) -> None:
    with TestClient(_token_app(issuer), base_url="http://gateway.example") as plain_client:
        response = plain_client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(ALER_ID, ALER_SECRET)
        )
    assert response.status_code == 400
    assert response.json()["error"] == "insecure_transport"


def test_public_jwks_has_no_private_material(issuer: TokenIssuer) -> None:
    jwks = issuer.public_jwks()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kty"] == "OKP"
    assert key["alg"] == "Ed25519"
    assert key["use"] == "sig"
    assert key["kid"]
    assert "d" not in key


def test_es256_signing_key_is_supported(clients: list[PartnerClient], clock: FakeClock) -> None:
    es_key = ECKey.generate_key("P-256", private=True)
    issuer = TokenIssuer(clients, es_key, ISSUER, AUDIENCE, clock=clock)
    with TestClient(_token_app(issuer), base_url="https://testserver") as test_client:
        token = _issue(test_client)
    assert _b64json(token.split(".")[0])["alg"] == "ES256"
    principal = TokenValidator(issuer.public_jwks(), ISSUER, AUDIENCE, clock=clock).validate("Bearer " + token)
    assert principal.client_id == ALER_ID


def test_signing_key_must_be_private_and_supported(clients: list[PartnerClient]) -> None:
    public_only = OKPKey.import_key(generate_signing_key().as_dict(private=False))
    with pytest.raises(ValueError, match="private"):
        TokenIssuer(clients, public_only, ISSUER, AUDIENCE)
    with pytest.raises(ValueError, match="P-256"):
        TokenIssuer(clients, ECKey.generate_key("P-384", private=True), ISSUER, AUDIENCE)


# --- token validation -------------------------------------------------------------------------


def test_validator_accepts_issued_token(client: TestClient, validator: TokenValidator) -> None:
    token = _issue(client)

    principal = validator.validate("Bearer " + token)

    assert principal == Principal(
        client_id=ALER_ID,
        organisation="aler",
        role="community-manager",
        scopes=ALER_SCOPES,
        token_id=_b64json(token.split(".")[1])["jti"],
        expires_at=datetime.fromtimestamp(NOW + TTL, tz=UTC),
    )
    assert validator.validate("bearer " + token) == principal  # scheme is case-insensitive


def test_validator_accepts_a_single_jwk(client: TestClient, issuer: TokenIssuer, clock: FakeClock) -> None:
    single = TokenValidator(issuer.public_jwks()["keys"][0], ISSUER, AUDIENCE, clock=clock)
    assert single.validate("Bearer " + _issue(client)).client_id == ALER_ID


def test_expired_token_is_rejected(client: TestClient, validator: TokenValidator, clock: FakeClock) -> None:
    header = "Bearer " + _issue(client)

    clock.now = NOW + TTL - 1
    assert validator.validate(header).client_id == ALER_ID

    clock.now = NOW + TTL  # exp <= now
    error = _rejects(validator, header, ExpiredToken)
    assert error.status_code == 401
    assert error.code == "expired-token"


def test_leeway_tolerates_small_clock_skew(client: TestClient, issuer: TokenIssuer, clock: FakeClock) -> None:
    header = "Bearer " + _issue(client)
    lenient = TokenValidator(issuer.public_jwks(), ISSUER, AUDIENCE, clock=clock, leeway_seconds=30)

    clock.now = NOW + TTL + 10
    assert lenient.validate(header).client_id == ALER_ID
    clock.now = NOW + TTL + 30
    _rejects(lenient, header, ExpiredToken)


def test_token_issued_in_the_future_is_rejected(
    client: TestClient, validator: TokenValidator, clock: FakeClock
) -> None:
    header = "Bearer " + _issue(client)
    clock.now = NOW - 60
    _rejects(validator, header, InvalidToken)


def test_tampered_payload_is_rejected(client: TestClient, validator: TokenValidator) -> None:
    token = _issue(client)
    header_segment, payload_segment, signature = token.split(".")

    middle = len(payload_segment) // 2
    flipped = "A" if payload_segment[middle] != "A" else "B"
    tampered = payload_segment[:middle] + flipped + payload_segment[middle + 1 :]
    error = _rejects(validator, f"Bearer {header_segment}.{tampered}.{signature}", InvalidToken)
    assert error.code == "invalid-token"

    escalated = _b64encode_json({**_b64json(payload_segment), "scope": "privacy:audit"})
    _rejects(validator, f"Bearer {header_segment}.{escalated}.{signature}", InvalidToken)


def test_tampered_signature_is_rejected(client: TestClient, validator: TokenValidator) -> None:
    token = _issue(client)
    flipped = "A" if token[-5] != "A" else "B"
    _rejects(validator, "Bearer " + token[:-5] + flipped + token[-4:], InvalidToken)


def test_token_signed_by_another_key_is_rejected(
    clients: list[PartnerClient], signing_key: OKPKey, validator: TokenValidator, clock: FakeClock
) -> None:
    other_issuer = TokenIssuer(clients, generate_signing_key(), ISSUER, AUDIENCE, clock=clock)
    with TestClient(_token_app(other_issuer), base_url="https://testserver") as other_client:
        _rejects(validator, "Bearer " + _issue(other_client), InvalidToken)

    # Same kid as the real key, different key material.
    impostor = generate_signing_key()
    forged = jwt.encode(
        {"alg": "Ed25519", "typ": "at+jwt", "kid": signing_key.kid}, _claims(), key=impostor, algorithms=["Ed25519"]
    )
    _rejects(validator, "Bearer " + forged, InvalidToken)


def test_wrong_audience_or_issuer_is_rejected(client: TestClient, issuer: TokenIssuer, clock: FakeClock) -> None:
    header = "Bearer " + _issue(client)

    other_audience = TokenValidator(issuer.public_jwks(), ISSUER, "https://other.example/api", clock=clock)
    error = _rejects(other_audience, header, InvalidToken)
    assert "another service" in error.detail

    other_issuer = TokenValidator(issuer.public_jwks(), "https://other.example", AUDIENCE, clock=clock)
    error = _rejects(other_issuer, header, InvalidToken)
    assert "another authority" in error.detail


def test_alg_none_is_rejected(client: TestClient, validator: TokenValidator) -> None:
    payload_segment = _issue(client).split(".")[1]
    for alg in ("none", "None", "NONE"):
        unsigned = _b64encode_json({"alg": alg, "typ": "at+jwt"}) + "." + payload_segment + "."
        _rejects(validator, "Bearer " + unsigned, InvalidToken)


def test_hmac_token_is_rejected(validator: TokenValidator, issuer: TokenIssuer) -> None:
    # Classic algorithm confusion: HMAC keyed with the published public key.
    public_x = issuer.public_jwks()["keys"][0]["x"]
    hmac_key = OctKey.import_key(public_x.encode() * 2)
    forged = jwt.encode({"alg": "HS256", "typ": "at+jwt"}, _claims(), key=hmac_key, algorithms=["HS256"])
    _rejects(validator, "Bearer " + forged, InvalidToken)


@pytest.mark.parametrize("claim", ["jti", "sub", "org", "role", "client_id", "exp", "iss", "aud"])
def test_missing_claim_is_rejected(signing_key: OKPKey, validator: TokenValidator, claim: str) -> None:
    token = _sign(signing_key, _claims(**{claim: None}))
    error = _rejects(validator, "Bearer " + token, InvalidToken)
    assert claim in error.detail


def test_crafted_token_with_all_claims_is_accepted(signing_key: OKPKey, validator: TokenValidator) -> None:
    principal = validator.validate("Bearer " + _sign(signing_key, _claims()))
    assert principal.token_id == "test-jti"


@pytest.mark.parametrize(
    "overrides",
    [
        {"org": 42},
        {"org": ""},
        {"scope": ["status:read"]},
        {"sub": "someone-else"},
        {"exp": "tomorrow"},
        {"aud": ["https://other.example/api"]},
    ],
    ids=["org-not-text", "org-empty", "scope-not-text", "sub-not-client", "exp-not-number", "aud-list-other"],
)
def test_malformed_claims_are_rejected(
    signing_key: OKPKey, validator: TokenValidator, overrides: dict[str, Any]
) -> None:
    _rejects(validator, "Bearer " + _sign(signing_key, _claims(**overrides)), InvalidToken)


def test_non_access_token_type_is_rejected(signing_key: OKPKey, validator: TokenValidator) -> None:
    _rejects(validator, "Bearer " + _sign(signing_key, _claims(), typ="JWT"), InvalidToken)


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer   "])
def test_missing_token_is_rejected(validator: TokenValidator, header: str | None) -> None:
    error = _rejects(validator, header, MissingToken)
    assert error.status_code == 401
    assert error.code == "missing-token"
    assert error.www_authenticate() == "Bearer"


@pytest.mark.parametrize("scheme", ["Basic", "Token", "MAC", "Bearer:"])
def test_non_bearer_scheme_is_rejected(client: TestClient, validator: TokenValidator, scheme: str) -> None:
    error = _rejects(validator, f"{scheme} {_issue(client)}", MissingToken)
    assert "Bearer" in error.detail


@pytest.mark.parametrize("credentials", ["not-a-jwt", "a.b.c", "a.b", "two tokens", "bad\u00e9chars", "x" * 5000])
def test_malformed_bearer_token_is_rejected(validator: TokenValidator, credentials: str) -> None:
    error = _rejects(validator, "Bearer " + credentials, InvalidToken)
    assert error.www_authenticate().startswith('Bearer error="invalid_token"')


# --- principals and scopes --------------------------------------------------------------------


def test_principal_require_scope(client: TestClient, validator: TokenValidator) -> None:
    principal = validator.validate("Bearer " + _issue(client, scope="status:read"))

    principal.require("status:read")
    assert principal.has_scope("status:read")
    with pytest.raises(InsufficientScope) as caught:
        principal.require("messages:submit")

    error = caught.value
    assert error.status_code == 403
    assert error.code == "insufficient-scope"
    assert error.scope == "messages:submit"
    assert "messages:submit" in error.detail
    assert 'scope="messages:submit"' in error.www_authenticate()


def test_error_attributes() -> None:
    for error_type, status, code in [
        (InvalidToken, 401, "invalid-token"),
        (ExpiredToken, 401, "expired-token"),
        (MissingToken, 401, "missing-token"),
    ]:
        error = error_type()
        assert isinstance(error, AuthError)
        assert (error.status_code, error.code, error.slug) == (status, code, code)
        assert error.detail
        assert str(error) == error.detail


# --- FastAPI helpers --------------------------------------------------------------------------


def test_fastapi_dependency_and_error_response(issuer: TokenIssuer, validator: TokenValidator) -> None:
    app = _token_app(issuer)
    app.state.token_validator = validator
    current_principal = bearer_principal_dependency(lambda request: request.app.state.token_validator)

    @app.get("/status")
    def status(principal: Principal = Depends(current_principal)) -> dict[str, str]:  # noqa: B008
        principal.require("status:read")
        return {"organisation": principal.organisation}

    @app.get("/audit")
    def audit(request: Request) -> dict[str, str]:
        principal = principal_from_request(request, request.app.state.token_validator)
        principal.require("privacy:audit")
        return {"client_id": principal.client_id}

    async def handle_auth_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthError)
        return auth_error_response(exc)

    app.add_exception_handler(AuthError, handle_auth_error)

    with TestClient(app, base_url="https://testserver") as test_client:
        token = _issue(test_client)

        ok = test_client.get("/status", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert ok.json() == {"organisation": "aler"}

        missing = test_client.get("/status")
        assert missing.status_code == 401
        assert missing.json()["code"] == "missing-token"
        assert missing.headers["www-authenticate"] == "Bearer"

        forbidden = test_client.get("/audit", headers={"Authorization": f"Bearer {token}"})
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "insufficient-scope"
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]

        bad = test_client.get("/status", headers={"Authorization": f"Bearer {token[:-3]}xyz"})
        assert bad.status_code == 401
        assert bad.json()["code"] == "invalid-token"
        assert token[:-3] not in bad.text
