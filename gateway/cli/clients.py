"""``gateway clients``: partner clients kept in the store (add, rotate a secret or keys, disable, list), and
``gateway hash-secret`` for the clients file."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli.setup import on_seeded_store

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway
    from gateway.store import StoreTransaction

app = typer.Typer(help="Partner clients kept in the store: running gateways see changes within seconds.",
                  no_args_is_help=True)


def _registered_keys(path: Path) -> str:
    """The JWK Set to register from a public key file (JWK, JWK Set or PEM); exits 2 when it is not acceptable."""
    from gateway.auth.client_keys import public_key_document, registered_key_set

    try:
        return registered_key_set(public_key_document(path.read_text(encoding="utf-8")))
    except OSError as exc:
        typer.echo(f"cannot read {path}: {exc.strerror}", err=True)
    except ValueError as exc:
        typer.echo(f"not a usable public key: {exc}", err=True)
    raise typer.Exit(2)


def _change_client(change: Callable[[StoreTransaction], Awaitable[bool]], refusal: str) -> None:
    """Make ``change`` in one transaction of the seeded store; exit 1 saying ``refusal`` when it changed nothing
    (no such client, or one that exists already)."""
    async def changed(gateway: Gateway) -> bool:
        async with gateway.store.transaction() as tx:
            return await change(tx)

    if not on_seeded_store(changed):
        typer.echo(refusal, err=True)
        raise typer.Exit(1)


def _kids(public_jwks: str) -> str:
    import json

    return ", ".join(str(key.get("kid")) for key in json.loads(public_jwks)["keys"])


PUBLIC_KEY_HELP = ("File with the client's public key (JWK, JWK Set or PEM): the client then authenticates only "
                   "with private_key_jwt assertions signed with it, never with a secret.")


@app.command("add")
def clients_add(
    client_id: Annotated[str, typer.Argument(help="The new client's id.")],
    organisation: Annotated[str, typer.Option(help="The partner (or data protection office) it acts for.")],
    role: Annotated[str, typer.Option(help="Its role, e.g. system or privacy-officer.")],
    scope: Annotated[list[str], typer.Option(help="A scope it may obtain; repeat for several.")],
    public_key: Annotated[Path | None, typer.Option(help=PUBLIC_KEY_HELP)] = None,
) -> None:
    """Add a client with a generated secret, printed once (store it in the partner's vault, it is not kept); or,
    with --public-key, a client that authenticates with private_key_jwt and has no secret at all."""
    import secrets as secret_tokens

    from gateway.auth import PartnerClient, hash_client_secret

    secret = None if public_key is not None else secret_tokens.token_urlsafe(32)
    keys = None if public_key is None else _registered_keys(public_key)
    try:
        client = PartnerClient(client_id, None if secret is None else hash_client_secret(secret), organisation, role,
                               frozenset(scope), public_jwks=keys)
    except ValueError as exc:
        typer.echo(f"not added: {exc}", err=True)
        raise typer.Exit(2) from None

    _change_client(lambda tx: tx.add_client(client, datetime.now(UTC)),
                   f"not added: a client {client_id!r} exists already")
    if keys is not None:
        typer.echo(f"client_id: {client_id}\nauthentication: private_key_jwt\nkeys: {_kids(keys)}")
        return
    typer.echo(f"client_id: {client_id}\nclient_secret: {secret}")


@app.command("rotate-secret")
def clients_rotate_secret(
    client_id: Annotated[str, typer.Argument(help="The client whose secret to replace.")],
) -> None:
    """Give a client a new generated secret, printed once; the old one stops working within seconds. A client
    registered with keys is refused: it never authenticates with a secret (use rotate-key)."""
    import secrets as secret_tokens

    from gateway.auth import hash_client_secret

    secret = secret_tokens.token_urlsafe(32)
    _change_client(lambda tx: tx.set_client_secret(client_id, hash_client_secret(secret), datetime.now(UTC)),
                   f"no client {client_id!r} that authenticates with a secret")
    typer.echo(f"client_id: {client_id}\nclient_secret: {secret}")


@app.command("rotate-key")
def clients_rotate_key(
    client_id: Annotated[str, typer.Argument(help="The client whose public keys to replace.")],
    public_key: Annotated[Path, typer.Option(help="File with the client's new public key or keys (JWK, JWK Set or "
                                                  "PEM); list the old key too in a JWK Set to roll over gently.")],
) -> None:
    """Register new public keys for a client: within seconds only assertions signed with them are accepted. A
    client that had a secret switches to private_key_jwt: its secret is dropped and stops working."""
    keys = _registered_keys(public_key)
    _change_client(lambda tx: tx.set_client_keys(client_id, keys, datetime.now(UTC)), f"no client {client_id!r}")
    typer.echo(f"client_id: {client_id}\nauthentication: private_key_jwt\nkeys: {_kids(keys)}")


@app.command("disable")
def clients_disable(client_id: Annotated[str, typer.Argument(help="The client to disable.")]) -> None:
    """Disable a client: within seconds it gets no token and its tokens already issued are refused."""
    _change_client(lambda tx: tx.disable_client(client_id, datetime.now(UTC)), f"no client {client_id!r}")
    typer.echo(f"disabled: {client_id}")


@app.command("list")
def clients_list() -> None:
    """Every stored client: id, organisation, role, scopes, how it authenticates (client_secret or
    private_key_jwt), enabled or disabled since when (never a secret)."""

    async def registered(gateway: Gateway) -> list[Any]:
        async with gateway.store.transaction() as tx:
            return await tx.registered_clients()

    for client, disabled_at in on_seeded_store(registered):
        state = "enabled" if disabled_at is None else f"disabled since {disabled_at.isoformat()}"
        typer.echo(f"{client.client_id}\t{client.organisation}\t{client.role}\t{' '.join(sorted(client.scopes))}"
                   f"\t{state}\t{client.auth_method}")


def hash_secret() -> None:
    """Read a client secret from stdin (or prompt) and print the hash to put in the clients file."""
    import getpass

    from gateway.auth import hash_client_secret

    secret = sys.stdin.readline().strip() if not sys.stdin.isatty() else getpass.getpass("client secret: ")
    typer.echo(hash_client_secret(secret))
