"""Signs audit checkpoints every N records or T seconds, and rotates the key that signs them.

A checkpoint (c2sp.org/tlog-checkpoint) commits to the log's origin, size and RFC 6962 root, read from the
audit head, which the store keeps current on every append (O(log n) Merkle frontier), so signing never rereads
the log. The background task (:meth:`AuditCheckpointer.run`, started with the gateway's workers) looks at the
log size every half second, so records followed by silence are still signed at most T seconds (plus one poll)
after the previous checkpoint; a log that has not grown gets no new checkpoint. Signing happens with the head
row locked: appends wait for the few milliseconds it takes, checkpoint
sizes never decrease in signing order, and two gateway instances never sign the same moment twice.

Keys: the private keys come from a file (:mod:`gateway.audit.keys`), reread whenever it changes, so that a
rotation done with ``gateway audit rotate-key`` is picked up by running workers. Their public halves are
registered in ``audit_signing_keys`` before their first signature. A key retired there never signs again,
even if a stale file still names it.

Rotation: :meth:`AuditCheckpointer.rotate_key` makes a new key the current one; by default the previous key
keeps co-signing (each note then carries both signatures) until :meth:`~AuditCheckpointer.finish_rotation`,
so that witnesses who know only the old key can follow the log while they add the new one. Checkpoints
signed before the rotation keep verifying with the retired key's public half.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.audit.checkpoint import Checkpoint, KeyFormatError, SigningKey, VerifierKey, sign_checkpoint
from gateway.audit.keys import read_signing_keys, write_signing_keys
from gateway.audit.stored import StoredCheckpoint
from gateway.errors import DependencyUnavailable
from gateway.logging import get_logger
from gateway.store import Store, StoreTransaction

__all__ = ["AuditCheckpointer", "CheckpointSigningError"]

log = get_logger(__name__)

_POLL_SECONDS = 0.5
"""How often the background task looks at the log size (a one-row read)."""


class CheckpointSigningError(RuntimeError):
    """No checkpoint can be signed: no usable key, or the log is smaller than its last checkpoint."""


Due = Callable[[int, StoredCheckpoint | None], bool]


class AuditCheckpointer:
    """Signs checkpoints of the audit log in ``store`` as ``origin`` with the keys in ``key_file``.

    ``key_file`` None means no key was configured: every attempt to sign then fails with
    :class:`CheckpointSigningError` (production refuses to start workers that way).
    """

    def __init__(self, store: Store, origin: str, key_file: Path | None, *, every_records: int = 1000,
                 every_seconds: float = 10.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if every_records < 1 or every_seconds <= 0:
            raise ValueError("checkpoint intervals must be positive")
        self.store = store
        self.origin = origin
        self.every_records = every_records
        self.every_seconds = every_seconds
        self.clock = clock
        self.monotonic = monotonic
        self._behind_since: float | None = None
        """Monotonic time at which new records were first seen while the clock was behind the last signing."""
        self._key_file = key_file
        self._keys: list[SigningKey] = []
        self._key_file_state: tuple[int, int, int] | None = None
        self._started = clock()
        self._warned_shrunk = False
        self.last_failure: str | None = None
        """Type of the error that made the background task's last attempt fail to sign (None once one
        succeeds); readiness reports the signer unusable while it is set."""

    @property
    def key_file(self) -> Path:
        """The file of private signing keys (current key first)."""
        if self._key_file is None:
            raise CheckpointSigningError("no audit signing key is configured: set GATEWAY_AUDIT_SIGNING_KEY_FILE")
        return self._key_file

    def signing_keys(self) -> list[SigningKey]:
        """The keys in the key file, current first, reread if the file changed since the last call.

        Raises :class:`CheckpointSigningError` if no file is configured or it cannot be read, and
        ``KeyFormatError`` if it holds no key or a malformed one.
        """
        try:
            stat = self.key_file.stat()
        except OSError as exc:
            raise CheckpointSigningError(f"cannot read the audit signing key file: {exc}") from exc
        state = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if state != self._key_file_state or not self._keys:
            self._keys = read_signing_keys(self.key_file)
            self._key_file_state = state
        return list(self._keys)

    # --- signing ----------------------------------------------------------------------------------------------

    async def checkpoint_now(self) -> StoredCheckpoint:
        """Sign a checkpoint of the log as it is now, whether or not one is due."""
        stored = await self._sign(None)
        assert stored is not None
        return stored

    async def maybe_checkpoint(self, *, flush: bool = False) -> StoredCheckpoint | None:
        """Sign a checkpoint if N records were added or T seconds passed since the last one (and any were added).

        With ``flush``, sign whenever records were added since the last checkpoint (used when stopping).
        """
        async with self.store.transaction() as tx:
            size = (await tx.audit_head()).size
            last = await tx.latest_audit_checkpoint()

        def due(size: int, last: StoredCheckpoint | None) -> bool:
            return self._due(size, last, flush=flush)

        if not due(size, last):
            return None
        return await self._sign(due)

    def _due(self, size: int, last: StoredCheckpoint | None, *, flush: bool) -> bool:
        last_size = last.tree_size if last is not None else 0
        if size < last_size:
            if not self._warned_shrunk:
                log.error("audit-log-shorter-than-checkpoint", records=size, tree_size=last_size)
                self._warned_shrunk = True
            return False
        if size == last_size:
            return False
        if flush or size - last_size >= self.every_records:
            return True
        since = last.signed_at if last is not None else self._started
        now = self.clock()
        if now >= since:
            self._behind_since = None
            return now - since >= timedelta(seconds=self.every_seconds)
        # The clock is behind the last signing time (it stepped back, or another instance's clock runs ahead),
        # so it cannot measure T: measure it on this process's monotonic clock from when the records were seen,
        # rather than leave them unsigned until the wall clock catches up.
        if self._behind_since is None:
            self._behind_since = self.monotonic()
        return self.monotonic() - self._behind_since >= self.every_seconds

    async def _sign(self, due: Due | None) -> StoredCheckpoint | None:
        keys = self.signing_keys()
        async with self.store.transaction() as tx:
            head = await tx.locked_audit_head()
            last = await tx.latest_audit_checkpoint()
            if last is not None and head.size < last.tree_size:
                raise CheckpointSigningError(
                    f"the audit log holds {head.size} records but checkpoint {last.id} was signed at size "
                    f"{last.tree_size}; run `gateway audit verify`"
                )
            if due is not None and not due(head.size, last):
                return None  # another instance signed it meanwhile
            signed_at = self.clock()
            if last is not None and signed_at < last.signed_at:
                signed_at = last.signed_at  # signing times never go back, even if the clock does
            signers = await self._usable_keys(tx, keys, signed_at)
            checkpoint = Checkpoint(self.origin, head.size, head.root())
            note = sign_checkpoint(checkpoint, *signers)
            stored = await tx.add_audit_checkpoint(checkpoint, note, signed_at, signers[0].verifier)
        self._behind_since = None
        log.info("audit-checkpoint-signed", tree_size=stored.tree_size, count=len(signers))
        return stored

    async def _usable_keys(self, tx: StoreTransaction, keys: Sequence[SigningKey],
                           now: datetime) -> list[SigningKey]:
        registered = {(k.key_name, k.key_id): k for k in await tx.audit_signing_keys()}
        usable: list[SigningKey] = []
        for key in keys:
            row = registered.get((key.name, key.key_id.hex()))
            if row is None:
                await tx.add_audit_signing_key(key.verifier, now)
            elif row.public_key != key.verifier.public_key:
                raise CheckpointSigningError(
                    f"key {key.name}+{key.key_id.hex()} in {self.key_file} is not the registered key of that "
                    "name and ID; generate a new key"
                )
            elif row.retired_at is not None:
                continue  # retired keys never sign again
            usable.append(key)
        if not usable:
            raise CheckpointSigningError(
                f"every audit signing key in {self.key_file} is retired; run `gateway audit rotate-key`"
            )
        return usable

    # --- background task ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, poll_seconds: float | None = None) -> None:
        """Sign checkpoints as they fall due until ``stop`` is set, then a last one covering every record."""
        poll = poll_seconds if poll_seconds is not None else min(_POLL_SECONDS, self.every_seconds)
        while not stop.is_set():
            await self._attempt(flush=False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll)
        await self._attempt(flush=True)

    async def _attempt(self, *, flush: bool) -> None:
        try:
            await self.maybe_checkpoint(flush=flush)
            self.last_failure = None
        except DependencyUnavailable as exc:
            log.warning("audit-checkpoint-retrying", error_type=type(exc.__cause__ or exc).__name__)
        except (CheckpointSigningError, KeyFormatError, OSError) as exc:  # `gateway audit checkpoint` says why
            self.last_failure = type(exc).__name__
            log.error("audit-checkpoint-failed", error_type=type(exc).__name__)
        except Exception as exc:  # keep signing later; never take the worker down
            self.last_failure = type(exc).__name__
            log.error("audit-checkpoint-failed", error_type=type(exc).__name__, exc_info=exc)

    # --- key rotation ---------------------------------------------------------------------------------------

    async def rotate_key(self, *, overlap: bool = True) -> SigningKey:
        """Make a new key the current signer and return it.

        With ``overlap`` the previous current key keeps co-signing until :meth:`finish_rotation`; without, it
        is retired now. Keys that were already co-signing are retired either way.
        """
        current = self.signing_keys()
        new = SigningKey.generate(current[0].name)
        keep = current[:1] if overlap else []
        retire = [k.verifier for k in current[len(keep):]]
        now = self.clock()
        async with self.store.transaction() as tx:
            await tx.add_audit_signing_key(new.verifier, now)
            if retire:
                await tx.retire_audit_signing_keys(retire, now)
            write_signing_keys(self.key_file, [new, *keep])  # a failed commit leaves a usable file behind
        self.signing_keys()
        log.info("audit-key-rotated", count=len(retire))
        return new

    async def finish_rotation(self) -> list[VerifierKey]:
        """Stop the co-signing keys of a rotation (retire them); returns them."""
        current = self.signing_keys()
        retire = [k.verifier for k in current[1:]]
        if not retire:
            return []
        async with self.store.transaction() as tx:
            await tx.retire_audit_signing_keys(retire, self.clock())
            write_signing_keys(self.key_file, current[:1])
        self.signing_keys()
        log.info("audit-key-rotation-finished", count=len(retire))
        return retire
