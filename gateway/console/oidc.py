"""Single sign-on of console officers through an OpenID Connect provider (Keycloak bridging SPID/CIE, or any
other provider the deployment's public body runs).

``GET /console/sso/start`` sends the officer's browser to the provider with an authorization request (code flow,
PKCE with S256, ``state`` and ``nonce``, all from authlib's Starlette client). ``GET /console/sso/callback``
takes the provider's answer: the ``state`` must be the one this browser started with, the code is exchanged (with
the PKCE verifier and the client's secret), and the ID token must be signed by a key of the provider's JWKS and
name the configured issuer, this client as audience, an unexpired time and the request's ``nonce``. The groups
the token lists then map to one organisation and its console roles (``GATEWAY_CONSOLE_OIDC_MAPPINGS``); a person
with no mapped group, or with groups of two organisations, is refused. Every refusal is audited with a coded
reason (:func:`gateway.console.sessions.record_failed_sign_in`), every success opens a console session
(:func:`gateway.console.sessions.start_session`, audited there). Signing out of the console ends the provider's
session too (RP-initiated logout with the ID token as ``id_token_hint``).

Between start and callback the sign-in in progress (state, nonce, PKCE verifier) lives in a short-lived cookie
sealed with AES-GCM under a key derived from the client secret, so any gateway instance can finish what another
began and nothing is kept in process memory. The cookie is ``SameSite=Lax`` (the provider's redirect back is a
cross-site navigation) and limited to ``/console/sso``.

The ID token asked for carries no name: the display name comes from the userinfo endpoint, so the token handed
back to the provider at sign-out (in a URL) says only who the officer is at the provider and their groups.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.starlette_client import OAuth
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from joserfc.errors import JoseError

from gateway.api.edge import CONSOLE_CSP
from gateway.console.rendering import render
from gateway.console.sessions import LOGIN_PAGE, ConsoleOfficer, record_failed_sign_in, start_session
from gateway.logging import get_logger
from gateway.settings import ConsoleOidcSettings, GatewaySettings, OidcGroupMapping

__all__ = [
    "CALLBACK_PATH",
    "PENDING_COOKIE",
    "START_PATH",
    "ConsoleSingleSignOn",
    "OfficerGrant",
    "PendingSignIns",
    "SignInRefused",
    "claim_values",
    "configure_single_sign_on",
    "console_subject",
    "grant_for",
    "router",
]

START_PATH = "/console/sso/start"
CALLBACK_PATH = "/console/sso/callback"
PENDING_COOKIE = "console_sso_pending"
PENDING_PATH = "/console/sso"
PENDING_MAX_AGE_S = 600
"""How long a sign-in may take at the provider before the console forgets it was started."""
DEFAULT_BUTTON = "login.sso"
_DISPLAY_NAME_MAX = 128
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

log = get_logger(__name__)
router = APIRouter()


class SignInRefused(Exception):
    """The provider's answer does not sign anyone in; ``reason`` is the coded reason audited."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OfficerGrant:
    """What the provider's groups allow: one organisation and its console roles."""

    organisation: str
    roles: frozenset[str]


def claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """The strings at ``path`` in the claims (dots walk into objects): a list of strings, or one string."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return []
        value = value[part]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def grant_for(groups: Iterable[str], mappings: Iterable[OidcGroupMapping]) -> OfficerGrant:
    """The organisation and roles the mapped groups give; :class:`SignInRefused` when none is mapped
    (``no-mapped-group``) or they belong to more than one organisation (``several-organisations``): an officer
    acts for one organisation at a time, and the console does not guess which."""
    held = set(groups)
    matched = [mapping for mapping in mappings if mapping.group in held]
    if not matched:
        raise SignInRefused("no-mapped-group")
    organisations = {mapping.organisation for mapping in matched}
    if len(organisations) > 1:
        raise SignInRefused("several-organisations")
    return OfficerGrant(organisations.pop(), frozenset(role for mapping in matched for role in mapping.roles))


def console_subject(sub: str) -> str:
    """The officer's subject in console sessions and audit records: ``oidc:`` and the provider's ``sub`` when it
    is an opaque UUID (as Keycloak's are); otherwise a digest of it, since some providers put a tax code or an
    e-mail address there."""
    if _UUID.fullmatch(sub):
        return f"oidc:{sub.lower()}"
    return "oidc:sha256:" + hashlib.sha256(sub.encode()).hexdigest()[:40]


class PendingSignIns:
    """Seals and opens the cookie holding a sign-in in progress (AES-256-GCM, key derived with HKDF from the
    client secret, the cookie name bound as associated data)."""

    def __init__(self, client_secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"quartieri-gateway console sign-in in progress").derive(client_secret.encode())
        self._aead = AESGCM(key)

    def seal(self, data: Mapping[str, Any]) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, json.dumps(data, separators=(",", ":")).encode(), PENDING_COOKIE.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, value: str) -> dict[str, Any] | None:
        """The sealed data, or None when the value was not sealed here (or was altered)."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            opened = self._aead.decrypt(raw[:12], raw[12:], PENDING_COOKIE.encode())
            data = json.loads(opened)
        except (ValueError, InvalidTag):
            return None
        return data if isinstance(data, dict) else None


class ConsoleSingleSignOn:
    """The console's OpenID Connect client: one per process, built from ``GATEWAY_CONSOLE_OIDC_...``."""

    def __init__(self, settings: ConsoleOidcSettings) -> None:
        if settings.issuer is None or settings.client_secret_file is None:
            raise ValueError("single sign-on needs an issuer and a client secret file")
        secret = settings.client_secret_file.read_text(encoding="utf-8").strip()
        if not secret:
            raise ValueError(f"{settings.client_secret_file} holds no client secret")
        self.settings = settings
        self.issuer = settings.issuer
        self.pending = PendingSignIns(secret)
        self._oauth = OAuth()
        self.provider = self._oauth.register(
            name="console",
            client_id=settings.client_id,
            client_secret=secret,
            server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": settings.scopes, "code_challenge_method": "S256",
                           "token_endpoint_auth_method": "client_secret_basic",
                           "timeout": settings.http_timeout_seconds},
        )

    async def _metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read once; it must name the configured issuer and offer S256."""
        try:
            metadata: dict[str, Any] = await self.provider.load_server_metadata()
        except httpx2.HTTPError as exc:
            log.warning("console sign-on: provider discovery failed", error=type(exc).__name__)
            raise SignInRefused("provider-unreachable") from None
        if metadata.get("issuer") != self.issuer:
            self.provider.server_metadata.clear()  # read it again next time: the operator may fix either side
            log.error("console sign-on: the provider names another issuer", expected=self.issuer,
                      named=metadata.get("issuer"))
            raise SignInRefused("provider-misconfigured")
        if "S256" not in metadata.get("code_challenge_methods_supported", ["S256"]):
            raise SignInRefused("provider-misconfigured")
        return metadata

    def redirect_uri(self, request: Request) -> str:
        return self.settings.redirect_uri or str(request.url_for("console_sso_callback"))

    async def begin(self, request: Request, secure_cookie: bool) -> Response:
        """The redirect to the provider's authorization endpoint, with the sealed sign-in in progress set."""
        await self._metadata()
        request.scope["session"] = {}
        try:
            response: Response = await self.provider.authorize_redirect(request, self.redirect_uri(request))
        except httpx2.HTTPError:
            raise SignInRefused("provider-unreachable") from None
        response.status_code = 303
        response.set_cookie(PENDING_COOKIE, self.pending.seal(request.scope["session"]), path=PENDING_PATH,
                            max_age=PENDING_MAX_AGE_S, httponly=True, samesite="lax", secure=secure_cookie)
        return response

    async def complete(self, request: Request) -> ConsoleOfficer:
        """The officer the provider's answer signs in; :class:`SignInRefused` with the reason otherwise."""
        sealed = request.cookies.get(PENDING_COOKIE)
        pending = self.pending.open(sealed) if sealed else None
        if pending is None:
            raise SignInRefused("no-sign-in-started")
        await self._metadata()
        request.scope["session"] = pending
        try:
            token: dict[str, Any] = await self.provider.authorize_access_token(
                request, claims_options=self._claims_options(), leeway=self.settings.clock_skew_seconds)
        except MismatchingStateError:
            raise SignInRefused("state-mismatch") from None
        except OAuthError as exc:
            reason = "code-refused" if exc.error == "invalid_grant" else f"provider-{_code(exc.error)}"
            raise SignInRefused(reason) from None
        except JoseError as exc:
            log.warning("console sign-on: ID token refused", error=type(exc).__name__)
            raise SignInRefused("id-token-invalid") from None
        except httpx2.HTTPError:
            raise SignInRefused("provider-unreachable") from None
        claims = token.get("userinfo")
        if not token.get("id_token") or not isinstance(claims, Mapping) or not isinstance(claims.get("sub"), str):
            raise SignInRefused("id-token-missing")
        grant = grant_for(claim_values(claims, self.settings.groups_claim), self.settings.mappings)
        return ConsoleOfficer(subject=console_subject(claims["sub"]),
                              display_name=await self._display_name(token, claims),
                              organisation=grant.organisation, roles=grant.roles, sign_in_method="oidc",
                              id_token_hint=token["id_token"])

    def _claims_options(self) -> dict[str, Any]:
        return {"iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.settings.client_id},
                "exp": {"essential": True}, "iat": {"essential": True}, "sub": {"essential": True},
                "nonce": {"essential": True}}

    async def _display_name(self, token: dict[str, Any], claims: Mapping[str, Any]) -> str:
        """The name the console greets the officer with: the ID token's, else the userinfo endpoint's (for the
        same ``sub``), else a neutral word."""
        name = claims.get("name") or claims.get("preferred_username")
        if not isinstance(name, str) or not name.strip():
            try:
                info = await self.provider.userinfo(token=token)
            except (httpx2.HTTPError, OAuthError, ValueError):
                info = {}
            same_person = info.get("sub") == claims["sub"]
            name = (info.get("name") or info.get("preferred_username")) if same_person else None
        if not isinstance(name, str) or not name.strip():
            return "—"
        return name.strip()[:_DISPLAY_NAME_MAX]

    async def logout_url(self, request: Request, officer: ConsoleOfficer) -> str | None:
        """The provider's end-session URL for ``officer`` (RP-initiated logout with ``id_token_hint``), or None
        when the provider cannot be asked (the console's own session is ended all the same)."""
        post_logout = self.settings.post_logout_redirect_uri or str(request.base_url).rstrip("/") + LOGIN_PAGE
        try:
            await self._metadata()
            made: dict[str, Any] = await self.provider.create_logout_url(
                post_logout_redirect_uri=post_logout, id_token_hint=officer.id_token_hint,
                client_id=self.settings.client_id)
        except (SignInRefused, RuntimeError) as exc:
            log.warning("console sign-out: the provider's session could not be ended", error=str(exc))
            return None
        url: str = made["url"]
        return url


def _code(value: object) -> str:
    """A provider's error code cut down to a short token fit for an audit record."""
    text = re.sub(r"[^a-z0-9_-]", "", str(value or "error").lower())[:40]
    return text or "error"


def _sso(request: Request) -> ConsoleSingleSignOn | None:
    sso: ConsoleSingleSignOn | None = getattr(request.app.state, "console_sso", None)
    return sso


def _secure(request: Request) -> bool:
    settings: GatewaySettings = request.app.state.gateway.settings
    return not settings.console_plain_http


_UNAVAILABLE = frozenset({"provider-unreachable", "provider-misconfigured"})


async def _refused(request: Request, reason: str) -> Response:
    """Audit the refusal and tell the person, without detail, that the sign-in did not happen."""
    await record_failed_sign_in(request, "oidc", reason)
    if reason in _UNAVAILABLE:
        message, status = "sso.error.unavailable", 503
    elif reason in ("no-mapped-group", "several-organisations"):
        message, status = "sso.error.no_role", 403
    else:
        message, status = "sso.error.refused", 401
    response = render(request, "error.html", {"message": message}, status_code=status)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH, httponly=True, samesite="lax",
                           secure=_secure(request))
    return response


@router.get("/sso/start", name="console_sso_start", summary="Sign in through the OpenID Connect provider")
async def sso_start(request: Request) -> Response:
    sso = _sso(request)
    if sso is None:
        return Response(status_code=404)
    try:
        return await sso.begin(request, _secure(request))
    except SignInRefused as refused:
        return await _refused(request, refused.reason)


@router.get("/sso/callback", name="console_sso_callback", summary="The provider's answer to a sign-in")
async def sso_callback(request: Request) -> Response:
    sso = _sso(request)
    if sso is None:
        return Response(status_code=404)
    try:
        officer = await sso.complete(request)
    except SignInRefused as refused:
        return await _refused(request, refused.reason)
    return _continue_home(request, await start_session(request, officer))


def _continue_home(request: Request, started: Response) -> Response:
    """The signed-in answer as a page that moves on to the console's home by itself.

    The provider's redirect to the callback is a cross-site navigation, and a browser sends no ``SameSite=Strict``
    cookie on any step of one: a plain redirect home would arrive without the new session cookie. The page's own
    refresh is a navigation the console starts, which carries it.
    """
    target = started.headers.get("location", "/console/")
    page = render(request, "sso_continue.html", {"target": target})
    for cookie in started.headers.getlist("set-cookie"):
        page.headers.append("set-cookie", cookie)
    page.delete_cookie(PENDING_COOKIE, path=PENDING_PATH, httponly=True, samesite="lax", secure=_secure(request))
    page.headers["cache-control"] = "no-store"
    return page


def configure_single_sign_on(app: FastAPI, settings: GatewaySettings, organisations: Iterable[str]) -> None:
    """Offer single sign-on on the console of ``app`` when ``GATEWAY_CONSOLE_OIDC_ISSUER`` is set: the sign-in
    page's button and the provider's sign-out. Refuses a mapping to an organisation that is neither a partner
    (``organisations``) nor the gateway's data protection office."""
    oidc = settings.console_oidc
    if not oidc.enabled:
        return
    known = {*organisations, settings.data_protection_office}
    unknown = sorted({m.organisation for m in oidc.mappings} - known)
    if unknown:
        raise ValueError(f"GATEWAY_CONSOLE_OIDC_MAPPINGS names unknown organisations: {unknown}")
    sso = ConsoleSingleSignOn(oidc)
    app.state.console_sso = sso
    app.state.console_sign_in_options = ((oidc.button_label or DEFAULT_BUTTON, START_PATH),)
    app.state.console_logout_redirect = sso.logout_url
    # The sign-out form's answer leads on to the provider's end-session endpoint: a browser enforces the page's
    # form-action on that redirect too.
    provider = urlsplit(oidc.issuer or "")
    app.state.console_csp = CONSOLE_CSP.replace("form-action 'self'",
                                                f"form-action 'self' {provider.scheme}://{provider.netloc}")
