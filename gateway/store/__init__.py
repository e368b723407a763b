"""The store port: PostgreSQL in production, SQLite on a single machine, one schema managed by Alembic; the
unit of work the pipeline sees (:mod:`gateway.store.ports`), which an in-memory store also keeps for fast tests
(:mod:`gateway.store.memory`)."""

from gateway.store.models import MessageStatus, OutboxRow, Subject
from gateway.store.ports import PipelineStore, PipelineTransaction
from gateway.store.store import Store, StoreTransaction

__all__ = ["MessageStatus", "OutboxRow", "PipelineStore", "PipelineTransaction", "Store", "StoreTransaction", "Subject"]
