"""The audit log for privacy officers (role ``privacy-officer``): signed checkpoints, proofs and keys with the
scope ``audit:verify`` (what a partner's officer acting as a witness needs), one record as FHIR with
``privacy:report`` (and only a record the officer's organisation is party to, unless the officer belongs to the
data protection office). Every read is itself audited (a ``privacy-query`` record naming what was read).

* ``GET /v1/audit/checkpoint``: the latest signed checkpoint, a C2SP signed note (text/plain), for witnesses.
* ``GET /v1/audit/proof/inclusion?index=I&tree_size=N``: RFC 6962 audit path of record I in the tree of the
  first N records.
* ``GET /v1/audit/proof/consistency?first=M&second=N``: RFC 6962 proof that the first M records are a
  prefix of the first N.
* ``GET /v1/audit/keys``: the checkpoint verifier keys, retired ones included (C2SP vkey lines, or JSON).
* ``GET /v1/audit/records/{index}/fhir``: one record as a FHIR R4 AuditEvent.

Sizes default to the latest signed checkpoint when it covers the request (so that the root is a signed one),
else to the current size of the log. Proofs are assembled from the stored hashes of complete Merkle subtrees
(``audit_merkle_nodes``, written by each append) and the leaf hashes they need: one query for O(log N) rows
and O(log^2 N) SHA-256 computations at worst, the same bytes as computing them from every leaf.

The stored subtrees are not trusted: before answering, the proof is verified against the root it was built
with, and that root against the audit head's root (its Merkle frontier) by a consistency proof from the same
subtrees, so a proof served from them is, short of a SHA-256 collision, the one the leaves give. When a
subtree is missing (a log written before they were stored, until ``gateway audit rebuild-nodes`` runs) or a
check fails, the proof is computed as before from the stored leaf hashes of the first N records: O(N) rows
and about N (inclusion) or 2N (consistency) SHA-256 computations, done off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from gateway.api.deps import INDEX_MAX, AuditVerifierDep, GatewayDep, ReportingOfficerDep, RequestIdDep
from gateway.audit.chain import ChainHead
from gateway.audit.fhir_export import to_fhir_audit_event
from gateway.audit.merkle import (
    MissingNodes,
    NodeKey,
    ProofError,
    consistency_nodes,
    consistency_proof,
    consistency_proof_from_nodes,
    inclusion_nodes,
    inclusion_proof_from_nodes,
    inclusion_proof_with_root,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.stored import StoredCheckpoint
from gateway.errors import GatewayError, InputError, NotFound
from gateway.logging import get_logger
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.officer import Officer
from gateway.store import StoreTransaction
from schemas.errors import FieldProblem

__all__ = ["router"]

FHIR_JSON = "application/fhir+json"

log = get_logger(__name__)

router = APIRouter(prefix="/v1/audit", tags=["audit"])


async def _audited(gateway: GatewayDep, officer: Officer, request_id: str, query: str, queried_ref: str,
                   subject: str | None = None) -> None:
    """Record that ``officer`` read ``queried_ref`` (after the read, so a proof's sizes are the ones asked)."""
    office = PrivacyOffice(gateway.store, gateway.registry, gateway.settings.instance_id)
    await office.audit_query(query, officer, request_id, queried_ref=queried_ref, subject=subject)


class InclusionProofOut(BaseModel):
    """RFC 6962 / RFC 9162 inclusion proof; hashes in lowercase hex."""

    index: int
    tree_size: int
    leaf_hash: str
    """SHA-256(0x00 || canonical record bytes)."""
    proof: list[str]
    """Audit path from the leaf's sibling up to the child of the root."""
    root_hash: str
    checkpoint: str | None
    """The signed checkpoint note at exactly ``tree_size``, if one was signed."""


class ConsistencyProofOut(BaseModel):
    """RFC 6962 / RFC 9162 consistency proof between two tree sizes; hashes in lowercase hex."""

    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str]
    first_checkpoint: str | None
    """The signed checkpoint note at exactly ``first``, if one was signed."""
    second_checkpoint: str | None


class VerifierKeyOut(BaseModel):
    """A checkpoint verifier key and when it signed."""

    vkey: str
    """C2SP verifier key ``<name>+<hex key ID>+<base64(0x01 || Ed25519 public key)>``."""
    key_name: str
    key_id: str
    created_at: datetime
    retired_at: datetime | None


class _LogDamaged(GatewayError):
    status_code = 500
    slug = "audit-log-damaged"
    title = "The audit log is damaged"


def _covered_size(requested: int | None, needed: int, head_size: int, latest: StoredCheckpoint | None) -> int:
    """The requested size, or the latest checkpoint's size if it covers ``needed``, or the head size."""
    if requested is not None:
        if requested > head_size:
            raise NotFound(f"the audit log holds {head_size} records, fewer than {requested}")
        return requested
    if latest is not None and latest.tree_size >= needed:
        return latest.tree_size
    return head_size


async def _leaf_hashes(tx: StoreTransaction, tree_size: int) -> list[bytes]:
    hashes = await tx.audit_leaf_hashes(tree_size)
    if len(hashes) != tree_size:
        raise _LogDamaged(f"{tree_size} records expected, {len(hashes)} found; run `gateway audit verify`")
    return hashes


def _anchored(nodes: dict[NodeKey, bytes], size: int, root: bytes, head: ChainHead) -> None:
    """Check ``root`` (of the first ``size`` records) against the head's root with a consistency proof built from
    the same stored subtrees: short of a SHA-256 collision, it then is the root the leaves hash to."""
    proof, old_root, head_root = consistency_proof_from_nodes(nodes, size, head.size)
    if old_root != root or head_root != head.root():
        raise ProofError("stored subtrees disagree with the audit head")
    verify_consistency(size, head.size, root, head_root, proof)


Built = tuple[list[bytes], bytes, bytes]


def _checked(size: int, build: Callable[[], Built]) -> Built | None:
    """``build()``, or None (the caller falls back to the leaves) if a subtree is missing or a check fails."""
    try:
        return build()
    except MissingNodes as exc:
        log.info("audit_proof_from_leaves", reason="subtree-missing", count=len(exc.missing), tree_size=size)
    except ValueError:  # ProofError included
        log.warning("audit_proof_from_leaves", reason="subtree-inconsistent", tree_size=size)
    return None


async def _inclusion_from_nodes(tx: StoreTransaction, index: int, size: int, head: ChainHead) -> Built | None:
    """(proof, root, leaf hash) from stored subtrees, or None if one is missing or they fail a check."""
    nodes = await tx.audit_tree_nodes(inclusion_nodes(index, size) + consistency_nodes(size, head.size))

    def build() -> Built:
        proof, root, leaf = inclusion_proof_from_nodes(nodes, index, size)
        verify_inclusion(leaf, index, size, proof, root)
        _anchored(nodes, size, root, head)
        return proof, root, leaf

    return _checked(size, build)


async def _consistency_from_nodes(tx: StoreTransaction, first: int, size: int, head: ChainHead) -> Built | None:
    """(proof, first root, second root) from stored subtrees, or None (see :func:`_inclusion_from_nodes`)."""
    nodes = await tx.audit_tree_nodes(consistency_nodes(first, size) + consistency_nodes(size, head.size))

    def build() -> Built:
        proof, first_root, second_root = consistency_proof_from_nodes(nodes, first, size)
        verify_consistency(first, size, first_root, second_root, proof)
        _anchored(nodes, size, second_root, head)
        return proof, first_root, second_root

    return _checked(size, build)


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="Latest signed checkpoint (C2SP signed note)",
    responses={200: {"content": {"text/plain": {}}}, 404: {"description": "No checkpoint signed yet"}},
)
async def checkpoint(officer: AuditVerifierDep, gateway: GatewayDep, request_id: RequestIdDep) -> PlainTextResponse:
    async with gateway.store.transaction() as tx:
        latest = await tx.latest_audit_checkpoint()
    if latest is None:
        raise NotFound("no audit checkpoint has been signed yet")
    await _audited(gateway, officer, request_id, "read-checkpoint", f"audit-checkpoint/{latest.tree_size}")
    return PlainTextResponse(latest.note, headers={"Cache-Control": "no-store"})


@router.get("/proof/inclusion", response_model=InclusionProofOut, summary="Inclusion proof of one record")
async def inclusion(
    officer: AuditVerifierDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    index: Annotated[int, Query(ge=0, le=INDEX_MAX, description="Log index of the record")],
    tree_size: Annotated[int | None, Query(ge=1, le=INDEX_MAX,
                                           description="Tree size (default: see the module docs)")] = None,
) -> InclusionProofOut:
    async with gateway.store.transaction() as tx:
        head = await tx.audit_head()
        size = _covered_size(tree_size, index + 1, head.size, await tx.latest_audit_checkpoint())
        if index >= size:
            raise InputError(
                f"record {index} is not in a tree of {size} records",
                [FieldProblem("/query/index", "out-of-range", f"use an index below {size}")],
            )
        signed = await tx.audit_checkpoint_at(size)
        built = await _inclusion_from_nodes(tx, index, size, head)
        hashes = await _leaf_hashes(tx, size) if built is None else []
    if built is None:
        proof, root = await asyncio.to_thread(inclusion_proof_with_root, hashes, index)
        built = proof, root, hashes[index]
    proof, root, leaf = built
    await _audited(gateway, officer, request_id, "inclusion-proof", f"audit-log/{index}@{size}")
    return InclusionProofOut(index=index, tree_size=size, leaf_hash=leaf.hex(), proof=[h.hex() for h in proof],
                             root_hash=root.hex(), checkpoint=None if signed is None else signed.note)


def _consistency(hashes: list[bytes], first: int) -> tuple[list[bytes], bytes, bytes]:
    return consistency_proof(hashes, first), root_from_leaf_hashes(hashes[:first]), root_from_leaf_hashes(hashes)


@router.get("/proof/consistency", response_model=ConsistencyProofOut, summary="Consistency proof of two sizes")
async def consistency(
    officer: AuditVerifierDep,
    gateway: GatewayDep,
    request_id: RequestIdDep,
    first: Annotated[int, Query(ge=0, le=INDEX_MAX, description="The older tree size")],
    second: Annotated[int | None, Query(ge=0, le=INDEX_MAX,
                                        description="The newer tree size (default: see the module docs)")] = None,
) -> ConsistencyProofOut:
    async with gateway.store.transaction() as tx:
        head = await tx.audit_head()
        size = _covered_size(second, first, head.size, await tx.latest_audit_checkpoint())
        if first > size:
            raise InputError(
                f"the first size {first} is larger than the second, {size}",
                [FieldProblem("/query/first", "out-of-range", f"use a size up to {size}")],
            )
        signed = await tx.audit_checkpoint_at(first), await tx.audit_checkpoint_at(size)
        built = await _consistency_from_nodes(tx, first, size, head)
        hashes = await _leaf_hashes(tx, size) if built is None else []
    if built is None:
        built = await asyncio.to_thread(_consistency, hashes, first)
    proof, first_root, second_root = built
    await _audited(gateway, officer, request_id, "consistency-proof", f"audit-log/{first}..{size}")
    return ConsistencyProofOut(first=first, second=size, first_root=first_root.hex(), second_root=second_root.hex(),
                               proof=[h.hex() for h in proof],
                               first_checkpoint=None if signed[0] is None else signed[0].note,
                               second_checkpoint=None if signed[1] is None else signed[1].note)


@router.get(
    "/keys",
    summary="Checkpoint verifier keys (C2SP vkey lines; JSON with Accept: application/json)",
    responses={200: {"content": {"text/plain": {}, "application/json": {"schema": {
        "type": "array", "items": VerifierKeyOut.model_json_schema()}}}}},
    response_model=None,
)
async def keys(request: Request, officer: AuditVerifierDep, gateway: GatewayDep,
               request_id: RequestIdDep) -> Response:
    async with gateway.store.transaction() as tx:
        stored = await tx.audit_signing_keys()
    await _audited(gateway, officer, request_id, "read-keys", "audit-keys")
    if "application/json" in request.headers.get("accept", ""):
        body = [
            VerifierKeyOut(vkey=k.to_vkey(), key_name=k.key_name, key_id=k.key_id, created_at=k.created_at,
                           retired_at=k.retired_at).model_dump(mode="json")
            for k in stored
        ]
        return JSONResponse(body)
    return PlainTextResponse("".join(f"{k.to_vkey()}\n" for k in stored))


@router.get(
    "/records/{index}/fhir",
    summary="One audit record as a FHIR R4 AuditEvent (the read is audited)",
    responses={200: {"content": {FHIR_JSON: {}}}, 404: {"description": "No record at this index"}},
    response_class=JSONResponse,
)
async def record_as_fhir(index: Annotated[int, Path(ge=0, le=INDEX_MAX)], officer: ReportingOfficerDep,
                         gateway: GatewayDep, request_id: RequestIdDep) -> JSONResponse:
    async with gateway.store.transaction() as tx:
        entry = await tx.audit_entry(index)
    record = json.loads(entry["record"]) if entry is not None else None
    if record is None or not officer.concerns(record):  # another organisation's record: as if absent
        raise NotFound(f"no audit record at index {index}")
    await _audited(gateway, officer, request_id, "read-audit-record", f"audit-log/{index}",
                   subject=record.get("subject_ref"))
    purposes = {code: p.v3 for code, p in gateway.registry.purposes.items()}
    event = to_fhir_audit_event(record, purposes=purposes, site=gateway.settings.audit_origin)
    return JSONResponse(event, media_type=FHIR_JSON)
