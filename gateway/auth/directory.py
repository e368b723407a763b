"""Which partner clients exist right now: the token endpoint and every token check ask it.

Clients live in the store (``gateway clients`` adds them, rotates their secrets, disables them); a running
gateway keeps a snapshot and reloads it when it is older than ``refresh_seconds``, so that a client disabled
in the store gets no new token and sees its issued tokens refused within seconds, without a restart. The
loader is injected (no store import here): until it has answered once, the snapshot is the seed clients
(the YAML clients file, or those a test passes).

Deny by default: an unknown or disabled client id is refused; a failed reload keeps the last snapshot (a
disable is itself a store write, so the snapshot read before an outage already holds it) and is retried
after ``refresh_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import structlog

from gateway.auth.models import PartnerClient

__all__ = ["ClientDirectory", "LoadClients"]

log = structlog.stdlib.get_logger(__name__)

LoadClients = Callable[[], Awaitable[Sequence[tuple[PartnerClient, datetime | None]]]]
"""Returns every stored client with when it was disabled (None: enabled)."""


class ClientDirectory:
    """The current enabled partner clients (module docs).

    :param seed: the clients known before the store answers; ``client_id`` must be unique.
    :param load: reads the stored clients; None: the seed is all there is (a fixed set, e.g. in unit tests).
    :param refresh_seconds: how old the snapshot may be before the next check reloads it.
    :param clock: monotonic seconds; injectable for tests.
    """

    def __init__(self, seed: Sequence[PartnerClient], load: LoadClients | None = None, *,
                 refresh_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.seed = tuple(seed)
        ids = [c.client_id for c in self.seed]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate client_id {duplicates[0]!r}")
        self._load = load
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._active: dict[str, PartnerClient] = {c.client_id: c for c in self.seed}
        self._loaded_at: float | None = None

    def lookup(self, client_id: str) -> PartnerClient | None:
        """The enabled client with this id in the snapshot, or None (unknown or disabled)."""
        return self._active.get(client_id)

    def is_active(self, client_id: str) -> bool:
        """Whether the snapshot holds this client, enabled."""
        return client_id in self._active

    def scopes(self) -> frozenset[str]:
        """Every scope some known client holds (seed included)."""
        return frozenset(s for c in (*self.seed, *self._active.values()) for s in c.scopes)

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the snapshot if it is older than ``refresh_seconds`` (or ``force``)."""
        if self._load is None:
            return
        now = self._clock()
        if not force and self._loaded_at is not None and now - self._loaded_at < self.refresh_seconds:
            return
        self._loaded_at = now  # concurrent checks meanwhile use the current snapshot instead of reloading too
        try:
            stored = await self._load()
        except Exception as exc:  # any store failure: keep the snapshot (module docs), retry at the next interval
            log.warning("clients_reload_failed", error=type(exc).__name__)
            return
        self._active = {client.client_id: client for client, disabled_at in stored if disabled_at is None}
