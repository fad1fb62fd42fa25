"""Who may see the operator pages and /api/data: platform admins, by bearer token or cookie.

The pages work without JavaScript, so after the login form the access token is
kept in an HttpOnly, SameSite=Strict cookie (scripts cannot read it; other sites
cannot send it). State-changing forms also carry a CSRF token derived from the
session's token, checked on every POST together with the Origin header.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.principal import Principal
from gateway.auth.tokens import decode_access_token
from gateway.errors import Unauthenticated
from gateway.settings import Settings

COOKIE = "santana_ops"


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def operator_principal(request: Request, settings: Settings) -> tuple[Principal | None, str | None]:
    """(principal, why not): the bearer token first (scripts), else the page cookie."""
    state = request.scope.setdefault("state", {})
    principal: Principal | None = state.get("principal")
    if principal is not None:
        return principal, None
    if state.get("auth_error") is not None:
        return None, state["auth_error"].message
    token = session_token(request)
    if not token:
        return None, "Log in first."
    try:
        principal = decode_access_token(token, settings.jwt_secret)
    except Unauthenticated as exc:
        return None, exc.message
    state["principal"] = principal  # so the access log names the operator
    return principal, None


def set_session(response: Response, token: str, settings: Settings, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.jwt_access_ttl_seconds,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def csrf_token(request: Request, settings: Settings) -> str:
    token = session_token(request) or ""
    digest = hashlib.sha256(token.encode()).digest()
    return hmac.new(settings.jwt_secret.encode(), b"csrf:" + digest, hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """A browser POST names its origin; it must be this host (absent: non-browser client)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def csrf_ok(request: Request, settings: Settings, sent: str | None) -> bool:
    if not sent or not session_token(request) or not same_origin(request):
        return False
    return hmac.compare_digest(sent, csrf_token(request, settings))
