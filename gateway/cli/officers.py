"""``gateway officers add``: a local account of the privacy console (password and TOTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli.setup import on_seeded_store

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

app = typer.Typer(help="Local officer accounts of the privacy console (password and TOTP).",
                  no_args_is_help=True)


@app.command("add")
def officers_add(
    username: Annotated[str, typer.Argument(help="The officer's sign-in name (letters, digits, . _ -).")],
    organisation: Annotated[str, typer.Option(help="A partner id, or the data protection office's id.")],
    display_name: Annotated[str, typer.Option(help="How the console greets the officer.")],
    role: Annotated[list[str], typer.Option(help="A console role (privacy-officer, erasure-officer); repeat.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="The password (asked for when not given).")],
) -> None:
    """Add a local console account. Prints the TOTP secret and its otpauth:// URI once, for the officer's
    authenticator app: neither is shown again, and the password is kept only as an argon2id hash."""
    import re

    from gateway.console.accounts import CONSOLE_ROLES, new_account

    problems = []
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", username):
        problems.append("the username may hold 1-64 letters, digits, '.', '_' or '-'")
    if unknown := sorted(set(role) - CONSOLE_ROLES):
        problems.append(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(CONSOLE_ROLES))}")
    if len(password) < 12:
        problems.append("the password must have at least 12 characters")
    if problems:
        typer.echo("not added: " + "; ".join(problems), err=True)
        raise typer.Exit(2)

    async def add(gateway: Gateway) -> Any:
        return await new_account(gateway.store, username, display_name, organisation, frozenset(role), password,
                                 datetime.now(UTC))

    made = on_seeded_store(add)
    if made is None:
        typer.echo(f"not added: an officer {username!r} exists already", err=True)
        raise typer.Exit(1)
    typer.echo(f"username: {made.username}\ntotp_secret: {made.totp_secret}\notpauth_uri: {made.otpauth_uri}")
