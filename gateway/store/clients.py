"""Partner clients kept in the store (issue 10 points 13 and 14), and the assertion ids they have used.

Table ``clients`` (migration 0010; public keys for ``private_key_jwt`` from 0013) and ``client_assertion_ids``
(0013), which refuses a replayed assertion in every gateway process on the store. The YAML clients file only
seeds the table; what the table holds wins afterwards.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.auth.models import PartnerClient
from gateway.store.base import Repository, _utc
from gateway.store.tables import client_assertion_ids
from gateway.store.tables import clients as clients_table

__all__ = ["ClientsRepository"]


class ClientsRepository(Repository):
    """Partner clients and used assertion ids."""

    async def registered_clients(self) -> list[tuple[PartnerClient, datetime | None]]:
        """Every stored client with when it was disabled (None: enabled), by client id."""
        rows = await self.conn.execute(select(clients_table).order_by(clients_table.c.client_id))
        return [(PartnerClient(client_id=m["client_id"], secret_hash=m["secret_hash"], organisation=m["organisation"],
                               role=m["role"], scopes=frozenset(m["scopes"].split()), public_jwks=m["public_jwks"]),
                 _utc(m["disabled_at"]))
                for m in (r._mapping for r in rows)]

    async def add_client(self, client: PartnerClient, at: datetime) -> bool:
        """Store a new client, enabled; False (and nothing changed) if its id is taken already."""
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(clients_table).values(
                    client_id=client.client_id, secret_hash=client.secret_hash, organisation=client.organisation,
                    role=client.role, scopes=" ".join(sorted(client.scopes)), created_at=at, updated_at=at,
                    public_jwks=client.public_jwks))
        except IntegrityError:
            return False
        return True

    async def set_client_secret(self, client_id: str, secret_hash: str, at: datetime) -> bool:
        """Replace the secret hash of a client that authenticates with a secret; False if there is no such client
        (a client registered with keys is left as it is: it never gets a secret besides them)."""
        result = await self.conn.execute(update(clients_table).where(clients_table.c.client_id == client_id,
                                                                     clients_table.c.public_jwks.is_(None))
                                         .values(secret_hash=secret_hash, updated_at=at))
        return bool(result.rowcount)

    async def set_client_keys(self, client_id: str, public_jwks: str, at: datetime) -> bool:
        """Register new public keys for a client (``private_key_jwt`` from now on: a secret it had is dropped);
        False if there is no such client. ``public_jwks`` from :func:`gateway.auth.client_keys.registered_key_set`."""
        result = await self.conn.execute(update(clients_table).where(clients_table.c.client_id == client_id)
                                         .values(public_jwks=public_jwks, secret_hash=None, updated_at=at))
        return bool(result.rowcount)

    async def claim_assertion_id(self, client_id: str, jti: str, keep_until: datetime, now: datetime) -> bool:
        """Record that ``client_id`` used the assertion id ``jti``, kept until ``keep_until``; False (and nothing
        changed) if it did already: a replay. Ids of assertions expired by ``now`` are purged first. The primary
        key decides between two processes claiming the same id at once: one of them gets False."""
        await self.conn.execute(delete(client_assertion_ids).where(client_assertion_ids.c.keep_until < now))
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(client_assertion_ids).values(
                    client_id=client_id, jti=jti, keep_until=keep_until))
        except IntegrityError:
            return False
        return True

    async def assertion_ids_kept(self) -> int:
        """How many assertion ids are kept (for tests and operators)."""
        return int((await self.conn.execute(select(func.count()).select_from(client_assertion_ids))).scalar_one())

    async def disable_client(self, client_id: str, at: datetime) -> bool:
        """Disable a client from ``at`` on (kept disabled if it was already); False if there is no such client."""
        result = await self.conn.execute(
            update(clients_table).where(clients_table.c.client_id == client_id)
            .values(disabled_at=func.coalesce(clients_table.c.disabled_at, at), updated_at=at))
        return bool(result.rowcount)
