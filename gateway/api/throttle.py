"""Rate limits at the HTTP edge: the token endpoint per client and per address with a temporary lockout
after repeated failed authentications, and per-partner quotas on submit and read routes.

Each limit is a ``limits`` rate (``"60/minute"``) from :class:`gateway.settings.RateLimitSettings`, counted
over a moving window in this process's memory (several API processes each count their own share). A caller
over a limit gets 429 problem+json with ``Retry-After`` and ``RateLimit-Limit`` / ``RateLimit-Remaining`` /
``RateLimit-Reset``; a client or address locked out after too many failed authentications is answered 429
without its secret being checked, so guessing costs the attacker time and the gateway no scrypt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gateway.errors import TooManyRequests
from gateway.logging import get_logger
from gateway.settings import RateLimitSettings

__all__ = ["Throttle"]

log = get_logger(__name__)

_UNKNOWN: Final = "unknown"
_MAX_LOCKOUTS: Final = 10_000


class Throttle:
    """The limits of one API process (:mod:`gateway.api.throttle`)."""

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._token_client = parse(settings.token_per_client)
        self._token_address = parse(settings.token_per_address)
        self._failures = parse(f"{settings.token_failures_before_lockout} per "
                               f"{settings.token_failure_window_seconds} second")
        self._submit = parse(settings.partner_submit)
        self._read = parse(settings.partner_read)
        self._locked_until: dict[str, float] = {}

    def _take(self, item: RateLimitItem, policy: str, *key: str) -> None:
        if not self.settings.enabled:
            return
        if not self._limiter.hit(item, policy, *key):
            stats = self._limiter.get_window_stats(item, policy, *key)
            wait = max(1, math.ceil(stats.reset_time - self.clock()))
            raise TooManyRequests(
                f"too many requests for this {policy.split('-')[-1]}: retry in {wait} s",
                retry_after=wait, limit=item.amount, window_seconds=item.get_expiry(), policy=policy)

    def token_request(self, client_id: str | None, address: str | None) -> None:
        """Count a token request; refuse it while its client or address is locked out or over its rate."""
        now = self.clock()
        for key in (f"client:{client_id}" if client_id else None, f"address:{address or _UNKNOWN}"):
            until = self._locked_until.get(key, 0.0) if key else 0.0
            if self.settings.enabled and until > now:
                wait = max(1, math.ceil(until - now))
                raise TooManyRequests(f"locked out after repeated failed authentications: retry in {wait} s",
                                      retry_after=wait, limit=self._failures.amount,
                                      window_seconds=self._failures.get_expiry(), policy="token-lockout")
        if client_id:
            self._take(self._token_client, "token-client", client_id)
        self._take(self._token_address, "token-address", address or _UNKNOWN)

    def authentication_failed(self, client_id: str | None, address: str | None) -> None:
        """Count a failed client authentication; enough of them within the window lock the client id and the
        address out for ``token_lockout_seconds``."""
        if not self.settings.enabled:
            return
        if len(self._locked_until) > _MAX_LOCKOUTS:  # lockouts over are forgotten, so addresses cannot fill memory
            now = self.clock()
            self._locked_until = {k: until for k, until in self._locked_until.items() if until > now}
        for key in (f"client:{client_id}" if client_id else None, f"address:{address or _UNKNOWN}"):
            if key is None:
                continue
            counted = self._limiter.hit(self._failures, "token-failures", key)
            if not counted or self._limiter.get_window_stats(self._failures, "token-failures", key).remaining == 0:
                self._locked_until[key] = self.clock() + self.settings.token_lockout_seconds
                # the client id is not logged: it is unverified input
                log.warning("token-lockout", reason=key.split(":", 1)[0], host=address, count=self._failures.amount)

    def partner_request(self, partner: str, submitting: bool) -> None:
        """Count a partner's submit (POST) or read (GET) request against that partner's quota."""
        if submitting:
            self._take(self._submit, "partner-submit", partner)
        else:
            self._take(self._read, "partner-read", partner)
