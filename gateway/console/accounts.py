"""Local officer accounts: an argon2id password hash and a TOTP second factor (RFC 6238), both checked at
sign-in, with repeated failures locking the account (and the address they came from) out for a while.

``gateway officers add`` makes an account (:func:`new_account`) and prints the TOTP secret and its
``otpauth://`` URI once, for the officer's authenticator app; neither the password nor the secret is shown again.
A TOTP code is accepted once (the time step used is kept) and within one step of the server's clock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gateway.console import store as console_store
from gateway.settings import GatewaySettings
from gateway.store import Store

__all__ = ["CONSOLE_ROLES", "AddressThrottle", "NewAccount", "SignInOutcome", "check_sign_in", "new_account",
           "totp_uri"]

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
"""Verified against when the username is unknown, so that unknown and known names take the same time."""
ISSUER = "Quartieri gateway"
CONSOLE_ROLES = frozenset({"privacy-officer", "erasure-officer"})
"""``privacy-officer``: every page but erasure; ``erasure-officer``: also requests and approves erasures."""

SignInOutcome = Literal["ok", "bad-credentials", "bad-second-factor", "locked-out", "disabled"]


@dataclass(frozen=True, slots=True)
class NewAccount:
    """What ``gateway officers add`` prints once."""

    username: str
    totp_secret: str
    otpauth_uri: str


def totp_uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


async def new_account(store: Store, username: str, display_name: str, organisation: str, roles: frozenset[str],
                      password: str, at: datetime) -> NewAccount | None:
    """Store a new local account with a fresh TOTP secret; None if the username is taken."""
    secret = pyotp.random_base32()
    async with store.transaction() as tx:
        added = await console_store.add_account(tx, username, display_name, organisation, roles,
                                                _hasher.hash(password), secret, at)
    return NewAccount(username, secret, totp_uri(username, secret)) if added else None


class AddressThrottle:
    """Failed local sign-ins counted per address (in this process): too many within the window lock the
    address out, whichever usernames it tried."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._limit = RateLimitItemPerSecond(settings.console_sign_in_failures_before_lockout,
                                             settings.console_sign_in_failure_window_seconds)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def locked_out(self, address: str) -> bool:
        return not self._limiter.test(self._limit, "console-sign-in", address)

    def failed(self, address: str) -> None:
        self._limiter.hit(self._limit, "console-sign-in", address)


async def check_sign_in(store: Store, settings: GatewaySettings, username: str, password: str, code: str,
                        now: datetime) -> tuple[SignInOutcome, console_store.LocalAccount | None]:
    """Check a local sign-in: password (argon2id), then the TOTP code (never a step already used); count a
    failure on the account, locking it out after ``console_sign_in_failures_before_lockout`` within the window.
    A locked-out account is refused before its password is checked."""
    async with store.transaction() as tx:
        found = await console_store.account(tx, username)
        if found is None:
            _verify(_DUMMY_HASH, password)
            return "bad-credentials", None
        if found.disabled_at is not None:
            return "disabled", None
        if found.locked_until is not None and found.locked_until > now:
            return "locked-out", None
        outcome: SignInOutcome = "ok"
        step = 0
        if not _verify(found.password_hash, password):
            outcome = "bad-credentials"
        else:
            step = _totp_step(found.totp_secret, code, now)
            if step < 0 or (found.totp_last_step is not None and step <= found.totp_last_step):
                outcome = "bad-second-factor"
        if outcome != "ok":
            window = timedelta(seconds=settings.console_sign_in_failure_window_seconds)
            fresh = found.first_failed_at is None or now - found.first_failed_at > window
            failures = 1 if fresh else found.failed_sign_ins + 1
            first = now if fresh else found.first_failed_at
            locked = (now + timedelta(seconds=settings.console_lockout_seconds)
                      if failures >= settings.console_sign_in_failures_before_lockout else None)
            await console_store.record_failure(tx, username, 0 if locked else failures, None if locked else first,
                                               locked)
            return outcome, None
        rehash = _hasher.hash(password) if _hasher.check_needs_rehash(found.password_hash) else None
        await console_store.record_success(tx, username, step, rehash)
        return "ok", found


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_step(secret: str, code: str, now: datetime) -> int:
    """The time step whose code ``code`` is (this one or its neighbours), or -1."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    current = int(now.timestamp()) // totp.interval
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return step
    return -1
