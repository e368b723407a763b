"""The unit of work: one transaction, with the reads and writes of every aggregate of the store.

:meth:`gateway.store.store.Store.transaction` opens one; whatever a caller does through it (``tx.subject(...)``,
``tx.append_audit(...)``, ``tx.enqueue(...)``) commits together or not at all. Each aggregate's statements live
in its own repository module; this class only combines them over the one connection they share
(:mod:`gateway.store.base`).
"""

from __future__ import annotations

from gateway.store.activity import ActivityRepository
from gateway.store.audit_log import AuditLogRepository
from gateway.store.audit_tree import AuditTreeRepository
from gateway.store.checkpoints import CheckpointsRepository
from gateway.store.clients import ClientsRepository
from gateway.store.consents import ConsentsRepository
from gateway.store.outbox import OutboxRepository
from gateway.store.retention import RetentionRepository
from gateway.store.reviews import ReviewItemsRepository
from gateway.store.statuses import StatusesRepository
from gateway.store.subjects import SubjectsRepository

__all__ = ["StoreTransaction"]


class StoreTransaction(
    SubjectsRepository,
    ConsentsRepository,
    StatusesRepository,
    CheckpointsRepository,
    AuditLogRepository,
    AuditTreeRepository,
    ReviewItemsRepository,
    OutboxRepository,
    ActivityRepository,
    RetentionRepository,
    ClientsRepository,
):
    """Reads and writes inside one transaction."""
