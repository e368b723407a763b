"""``gateway audit``: verify the audit log, rebuild its Merkle nodes, sign a checkpoint, rotate the checkpoint
key and print the verifier keys.

The read-only commands (``verify``, ``keys``) open the store the settings name and never create a store, a schema
or a key (:mod:`gateway.readonly`); they fail naming the store they looked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.setup import configured_settings, existing_store, on_store, progress

if TYPE_CHECKING:
    from gateway.audit.verify import VerificationReport
    from gateway.bootstrap import Gateway
    from gateway.store import Store

app = typer.Typer(help="Audit log tools.", no_args_is_help=True)


@app.command("verify")
def audit_verify(
    keys: Annotated[Path | None, typer.Option(
        "--keys", help="Trust only these C2SP verifier keys (one per line) instead of the keys in the database.",
        exists=True, dir_okay=False, readable=True)] = None,
) -> None:
    """Recompute every hash and checkpoint of the audit log from the database; exit 1 naming the first bad index.

    Checks the hash chain and Merkle root of every record, every signed checkpoint's signatures (with the
    database's public keys, or only those in --keys), and that each checkpoint's root is the root of the
    records at its size. Reads only: exit 2 naming the store it looked for when there is none (it never
    creates a store or a key).
    """
    import asyncio

    from rich.console import Console

    from gateway.audit.checkpoint import KeyFormatError
    from gateway.audit.keys import read_verifier_keys
    from gateway.audit.offline import verify_stored_log
    from gateway.logging import configure_logging
    from gateway.readonly import describe_store

    settings = configured_settings()
    configure_logging("WARNING")
    console = Console()
    try:
        trusted_file = read_verifier_keys(keys) if keys is not None else None
    except KeyFormatError as exc:
        console.print(f"cannot read {keys}: {exc}")
        raise typer.Exit(2) from None

    async def main(store: Store, update: Callable[[int, int | None], None]) -> tuple[VerificationReport, int]:
        try:
            report = await verify_stored_log(store, settings.audit_origin, trusted_file, progress=update)
            async with store.transaction() as tx:
                checkpoints = len(await tx.audit_checkpoints())
        finally:
            await store.close()
        return report, checkpoints

    key_source = str(keys) if keys is not None else "the database"
    store = existing_store(settings, "audit verify")
    with progress("verifying the audit log") as update:
        report, checkpoints = asyncio.run(main(store, update))
    where = describe_store(settings)
    for warning in report.warnings:
        console.print(f"warning: {warning}")
    if report.ok and report.size == 0:
        console.print(f"audit log empty: no records yet in the {where}")
        return
    if report.ok:
        console.print(f"audit log intact: {report.size} records, root {report.root_hex}; "
                      f"{report.checkpoints} of {checkpoints} signed checkpoints verified with keys from {key_source}"
                      f" ({where})")
        return
    at = f"at index {report.first_bad_index}" if report.first_bad_index is not None else (
        f"at checkpoint {report.bad_checkpoint}" if report.bad_checkpoint is not None else
        f"at Merkle node level {report.bad_node[0]} index {report.bad_node[1]}" if report.bad_node else "")
    console.print(f"audit log BROKEN {at}: {report.problem}")
    for problem in report.problems[1:]:
        console.print(f"  also: {problem}")
    console.print(f"({where})")
    raise typer.Exit(1)


@app.command("rebuild-nodes")
def audit_rebuild_nodes() -> None:
    """Store the Merkle subtree hashes a log written before they were stored lacks (proofs then read
    O(log n) rows instead of every leaf hash). Safe while the gateway runs; existing hashes are never
    rewritten. Exit 1 if the leaves do not hash to the head's root (then run `gateway audit verify`)."""
    from gateway.audit.offline import rebuild_stored_nodes

    try:
        with progress("hashing Merkle subtrees") as update:
            done = on_store(lambda gateway: rebuild_stored_nodes(gateway.store, progress=update))
    except ValueError as exc:
        typer.echo(f"cannot rebuild the Merkle nodes: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{done.added} Merkle subtree hashes added for {done.size} records")
    if not done.root_matches:
        typer.echo("the stored leaf hashes do not hash to the head's root: run `gateway audit verify`", err=True)
        raise typer.Exit(1)


@app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of the audit log now and print it (a C2SP signed note)."""
    from gateway.audit.checkpoint import KeyFormatError
    from gateway.audit.checkpointer import CheckpointSigningError

    async def sign(gateway: Gateway) -> str:
        return (await gateway.checkpointer.checkpoint_now()).note

    try:
        typer.echo(on_store(sign), nl=False)
    except (CheckpointSigningError, KeyFormatError) as exc:
        typer.echo(f"cannot sign a checkpoint: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("rotate-key")
def audit_rotate_key(
    overlap: Annotated[bool, typer.Option(
        help="Keep the previous key co-signing until --finish, so witnesses can add the new key.")] = True,
    finish: Annotated[bool, typer.Option(
        "--finish", help="End a rotation: retire the keys that are still co-signing.")] = False,
    checkpoint: Annotated[bool, typer.Option(help="Sign a checkpoint right after the change.")] = True,
) -> None:
    """Make a new key sign checkpoints from now on (or, with --finish, retire the co-signing keys).

    Old checkpoints keep verifying with the retired keys' public halves, which stay in the database. Print
    the new verifier key for witnesses (also served at GET /v1/audit/keys).
    """
    from gateway.audit.checkpoint import KeyFormatError
    from gateway.audit.checkpointer import CheckpointSigningError

    async def rotate(gateway: Gateway) -> None:
        if finish:
            for key in await gateway.checkpointer.finish_rotation():
                typer.echo(f"retired {key.to_text()}")
        else:
            new = await gateway.checkpointer.rotate_key(overlap=overlap)
            typer.echo(f"new checkpoint key {new.verifier.to_text()}")
        if checkpoint:
            typer.echo((await gateway.checkpointer.checkpoint_now()).note, nl=False)

    try:
        on_store(rotate)
    except (CheckpointSigningError, KeyFormatError, OSError) as exc:
        typer.echo(f"cannot rotate the audit key: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("keys")
def audit_keys() -> None:
    """Print every checkpoint verifier key, retired ones included (the format --keys reads). Reads only: exit 2
    naming the store it looked for when there is none."""
    import asyncio

    from gateway.logging import configure_logging

    settings = configured_settings()
    configure_logging("WARNING")

    async def main(store: Store) -> list[str]:
        try:
            async with store.transaction() as tx:
                return [k.to_vkey() for k in await tx.audit_signing_keys()]
        finally:
            await store.close()

    for line in asyncio.run(main(existing_store(settings, "audit keys"))):
        typer.echo(line)
