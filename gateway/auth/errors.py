"""Authentication and authorisation errors raised when checking partner tokens.

Every error carries an HTTP ``status_code``, a stable ``code`` slug that
partner systems can match on, and a ``detail`` message telling the caller
what to do next. Details are fixed texts: they never include the
presented token or any other request data.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ExpiredToken",
    "InsufficientScope",
    "InvalidToken",
    "MissingToken",
]


def _quote(value: str) -> str:
    """Make ``value`` safe inside a quoted-string of an HTTP header."""
    return value.replace("\\", "").replace('"', "'")


class AuthError(Exception):
    """Base class of every authentication or authorisation failure."""

    status_code: int = 401
    code: str = "auth-error"
    title: str = "Authentication failed"
    #: RFC 6750 error code used in the ``WWW-Authenticate`` header.
    bearer_error: str | None = "invalid_token"
    default_detail: str = "The request could not be authenticated."

    def __init__(self, detail: str | None = None) -> None:
        self.detail: str = detail if detail is not None else self.default_detail
        super().__init__(self.detail)

    @property
    def slug(self) -> str:
        """Same as :attr:`code`, named like :attr:`gateway.errors.GatewayError.slug`."""
        return self.code

    def www_authenticate(self) -> str:
        """Value for the ``WWW-Authenticate`` response header (RFC 6750 §3)."""
        if self.bearer_error is None:
            return "Bearer"
        return f'Bearer error="{self.bearer_error}", error_description="{_quote(self.detail)}"'


class InvalidToken(AuthError):
    """The token is malformed, badly signed, or not meant for this gateway."""

    status_code = 401
    code = "invalid-token"
    title = "Invalid access token"
    default_detail = "The access token is not valid. Request a new token from the token endpoint."


class ExpiredToken(AuthError):
    """The token was valid but its lifetime is over."""

    status_code = 401
    code = "expired-token"
    title = "Expired access token"
    default_detail = "The access token has expired. Request a new token from the token endpoint."


class MissingToken(AuthError):
    """The request carries no bearer token at all."""

    status_code = 401
    code = "missing-token"
    title = "Missing access token"
    bearer_error = None
    default_detail = "No access token was sent. Send it as 'Authorization: Bearer <token>'."


class InsufficientScope(AuthError):
    """The token is valid but lacks the scope the operation needs."""

    status_code = 403
    code = "insufficient-scope"
    title = "Insufficient scope"
    bearer_error = "insufficient_scope"

    def __init__(self, scope: str, detail: str | None = None) -> None:
        self.scope: str = scope
        super().__init__(
            detail
            if detail is not None
            else (
                f"This operation needs the '{scope}' scope. Ask the gateway "
                "administrators to grant it to your client, then request a new token."
            )
        )

    def www_authenticate(self) -> str:
        """Value for the ``WWW-Authenticate`` header, naming the missing scope."""
        return f'{super().www_authenticate()}, scope="{_quote(self.scope)}"'
