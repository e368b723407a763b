"""The Keycloak of the test run (``scripts/realinfra.py`` starts it and exports ``GATEWAY_TEST_OIDC_*``) and a
person signing in on its real login form, over HTTP, without a browser.

The realm is ``infra/keycloak/realm-gateway.json``: synthetic officers of ALER and the Comune, one officer of the
gateway's data protection office, and a front-office clerk whose group the console does not map.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from email.message import Message
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from pathlib import Path
from urllib.request import Request

import httpx

from tests.conftest import require_env

ROOT = Path(__file__).resolve().parent.parent
REALM_FILE = ROOT / "infra" / "keycloak" / "realm-gateway.json"
ISSUER_ENV = "GATEWAY_TEST_OIDC_ISSUER"
CLIENT_ID_ENV = "GATEWAY_TEST_OIDC_CLIENT_ID"
CLIENT_SECRET_ENV = "GATEWAY_TEST_OIDC_CLIENT_SECRET"
_LOGIN_FORM = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', re.DOTALL)


@dataclass(frozen=True)
class Provider:
    """Where the test Keycloak is and the console client's credentials."""

    issuer: str
    client_id: str
    client_secret: str


def provider() -> Provider:
    """The running Keycloak; a skip locally and a failure in CI (``CI=true``) when none was started."""
    return Provider(require_env(ISSUER_ENV, "Keycloak (OpenID Connect)"), require_env(CLIENT_ID_ENV, "Keycloak"),
                    require_env(CLIENT_SECRET_ENV, "Keycloak"))


def password_of(username: str) -> str:
    """A synthetic officer's test password, as the realm file sets it."""
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    user = next(u for u in realm["users"] if u["username"] == username)
    return str(user["credentials"][0]["value"])


class _LoopbackIsSecure(DefaultCookiePolicy):
    """Send ``Secure`` cookies to http://localhost as browsers do (a loopback origin counts as secure): Keycloak
    marks its session cookies ``Secure`` even on plain http."""

    def return_ok_secure(self, cookie: Cookie, request: Request) -> bool:
        return request.host.split(":")[0] in ("localhost", "127.0.0.1") or super().return_ok_secure(cookie, request)


class _BrowserCookies(httpx.AsyncBaseTransport):
    """Keeps cookies as a browser does for the provider (httpx's own jar drops ``Secure`` ones on http)."""

    def __init__(self) -> None:
        self.jar = CookieJar(policy=_LoopbackIsSecure())
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        as_urllib = Request(str(request.url))  # noqa: S310 (only a carrier for the cookie jar, never opened)
        self.jar.add_cookie_header(as_urllib)
        cookie = as_urllib.get_header("Cookie")
        if cookie:
            request.headers["cookie"] = cookie
        response = await self._inner.handle_async_request(request)
        self.jar.extract_cookies(_Info(response.headers), as_urllib)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Info:
    """What :meth:`CookieJar.extract_cookies` reads of a response."""

    def __init__(self, headers: httpx.Headers) -> None:
        self._message = Message()
        for name, value in headers.multi_items():
            self._message[name] = value

    def info(self) -> Message:
        return self._message


def browser_towards_provider() -> httpx.AsyncClient:
    """An HTTP client that keeps Keycloak's cookies as a browser would and follows no redirect by itself."""
    return httpx.AsyncClient(timeout=30, transport=_BrowserCookies())


def login_form_action(page: httpx.Response) -> str | None:
    """The URL Keycloak's login form posts to, or None when the page is not its login form."""
    match = _LOGIN_FORM.search(page.text)
    return html.unescape(match.group(1)) if match else None


async def sign_in_at_provider(browser: httpx.AsyncClient, authorization_url: str, username: str,
                              password: str) -> httpx.Response:
    """Open the authorization URL and, on Keycloak's login form, type the username and password as a person
    would; Keycloak's answer to the form (a redirect to the console's callback when it signs the person in)."""
    page = await browser.get(authorization_url)
    assert page.status_code == 200, page.text[:500]
    action = login_form_action(page)
    assert action is not None, page.text[:2000]
    return await browser.post(action, data={"username": username, "password": password, "credentialId": ""})
