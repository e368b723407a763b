"""``gateway tokens rotate-key``: sign access tokens with a new key, the old one published until its tokens
expire."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from gateway.cli.setup import configured_settings

app = typer.Typer(help="Access-token signing.", no_args_is_help=True)


@app.command("rotate-key")
def tokens_rotate_key() -> None:
    """Sign access tokens with a new key from now on. The old key stays in the JWKS and keeps verifying until its
    tokens have expired (GATEWAY_TOKEN_TTL_SECONDS); keys retired longer ago are dropped. Running gateways take
    the new file within seconds, without a restart."""
    from gateway.auth.keys import read_token_keys, rotated, token_keys_text
    from gateway.secret_files import write_secret_file

    settings = configured_settings()
    path = settings.token_signing_key_file or settings.data_dir / "token-signing-key.jwk.json"
    try:
        keys = read_token_keys(path.read_text(encoding="utf-8"))
    except OSError as exc:
        typer.echo(f"cannot read the token-signing key file {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    new = rotated(keys, datetime.now(UTC), settings.token_ttl_seconds)
    staged = path.with_name(path.name + ".new")
    write_secret_file(staged, token_keys_text(new))
    staged.replace(path)  # atomically: a gateway re-reading the file never sees half of it
    retired = ", ".join(str(k.kid) for k, _ in new.retired) or "-"
    typer.echo(f"signing with {new.signing.kid}; still published: {retired}")
