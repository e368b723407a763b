"""The gateway's one error tree, each class mapped to one RFC 7807 problem ``type``.

::

    GatewayError                      (500, retriable=False)
    ├── InputError                    (4xx: the sender must change the message)
    │   ├── MalformedMessage          400 malformed-message   not JSON / not decodable
    │   ├── ContractViolation         422 contract-violation  wrong types, missing or unknown fields
    │   ├── PayloadTooLarge           413 payload-too-large
    │   ├── UnsupportedMediaType      415 unsupported-media-type
    │   └── UnknownPartner            404 unknown-partner
    ├── NotPermitted                  403 sender-mismatch     a partner submitting or reading as another
    │   ├── NotAPrivacyOfficer        403 insufficient-role   privacy routes without the privacy-officer role
    │   └── SameOfficer               403 four-eyes           an erasure approved by the officer who requested it
    ├── TooManyRequests               429 too-many-requests (retriable): a rate limit or lockout
    ├── NotFound                      404 not-found
    ├── Conflict                      409 conflict            e.g. an erasure approval that does not match its request
    └── DependencyUnavailable         503 dependency-unavailable (retriable): store or bus down

Authentication errors live in :mod:`gateway.auth.errors` and map to 401/403 the same way.
Foreign exceptions (pydantic, SQLAlchemy, aiokafka) are translated at the boundary that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.errors import FieldProblem

__all__ = [
    "Conflict",
    "ContractViolation",
    "DependencyUnavailable",
    "FieldProblem",
    "GatewayError",
    "InputError",
    "MalformedMessage",
    "NotAPrivacyOfficer",
    "NotFound",
    "NotPermitted",
    "PayloadTooLarge",
    "SameOfficer",
    "TooManyRequests",
    "UnknownPartner",
    "UnsupportedMediaType",
]

PROBLEM_BASE = "https://gateway.quartieri.example/problems/"


@dataclass
class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    detail: str
    problems: list[FieldProblem] = field(default_factory=list)

    status_code = 500
    slug = "internal-error"
    title = "Internal error"
    retriable = False

    def __str__(self) -> str:
        return self.detail

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


class InputError(GatewayError):
    """The message or request cannot be accepted as it is; resending it unchanged will fail again."""

    status_code = 400
    slug = "bad-input"
    title = "Bad input"


class MalformedMessage(InputError):
    status_code = 400
    slug = "malformed-message"
    title = "Message is not well-formed"


class ContractViolation(InputError):
    status_code = 422
    slug = "contract-violation"
    title = "Message does not match the published contract"


class PayloadTooLarge(InputError):
    status_code = 413
    slug = "payload-too-large"
    title = "Message is larger than the gateway accepts"


class UnsupportedMediaType(InputError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "The body is not in a media type this route takes"


class UnknownPartner(InputError):
    status_code = 404
    slug = "unknown-partner"
    title = "Unknown partner"


class NotPermitted(GatewayError):
    status_code = 403
    slug = "sender-mismatch"
    title = "Not permitted for this client"


class NotAPrivacyOfficer(NotPermitted):
    slug = "insufficient-role"
    title = "This needs a privacy officer"


class SameOfficer(NotPermitted):
    slug = "four-eyes"
    title = "An erasure needs a second, different officer"


class TooManyRequests(GatewayError):
    """A rate limit or a lockout; ``retry_after`` seconds until the caller may try again."""

    status_code = 429
    slug = "too-many-requests"
    title = "Too many requests"
    retriable = True

    def __init__(self, detail: str, *, retry_after: int, limit: int, window_seconds: int, policy: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.limit = limit
        self.window_seconds = window_seconds
        self.policy = policy

    def headers(self) -> dict[str, str]:
        """``Retry-After`` and the RateLimit header fields of the limit that was hit."""
        return {"Retry-After": str(self.retry_after), "RateLimit-Limit": str(self.limit),
                "RateLimit-Remaining": "0", "RateLimit-Reset": str(self.retry_after),
                "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window_seconds}'}


class NotFound(GatewayError):
    status_code = 404
    slug = "not-found"
    title = "Not found"


class Conflict(GatewayError):
    status_code = 409
    slug = "conflict"
    title = "The request conflicts with the gateway's state"


class DependencyUnavailable(GatewayError):
    status_code = 503
    slug = "dependency-unavailable"
    title = "A dependency of the gateway is unavailable; retry later"
    retriable = True
