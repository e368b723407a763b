"""Partner authentication: OAuth 2 client-credentials tokens and their validation.

Partner systems (ALER, ASST, Comune, FWA) and privacy officers obtain a
short-lived RFC 9068 JWT access token from :class:`TokenIssuer` and send
it as ``Authorization: Bearer``; :class:`TokenValidator` turns it into a
:class:`Principal` whose scopes routes check with :meth:`Principal.require`.
Nothing here reads settings or the environment: keys, clients and clocks
are passed in by the caller.
"""

from gateway.auth.client_secrets import hash_client_secret, verify_client_secret
from gateway.auth.directory import ClientDirectory
from gateway.auth.errors import AuthError, ExpiredToken, InsufficientScope, InvalidToken, MissingToken
from gateway.auth.fastapi import auth_error_response, bearer_principal_dependency, principal_from_request
from gateway.auth.issuer import TokenIssuer
from gateway.auth.keys import SUPPORTED_ALGORITHMS, SigningKey, generate_signing_key
from gateway.auth.models import PartnerClient, Principal
from gateway.auth.validator import TokenValidator

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "AuthError",
    "ClientDirectory",
    "ExpiredToken",
    "InsufficientScope",
    "InvalidToken",
    "MissingToken",
    "PartnerClient",
    "Principal",
    "SigningKey",
    "TokenIssuer",
    "TokenValidator",
    "auth_error_response",
    "bearer_principal_dependency",
    "generate_signing_key",
    "hash_client_secret",
    "principal_from_request",
    "verify_client_secret",
]
