"""The operator pages: /system-health, /production-readiness, /admin-debug, and their login.

Server-rendered (Jinja2) HTML with no JavaScript, for platform admins only.
Every response is no-store and unframeable; POSTs need the CSRF token.
"""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from gateway.db.models import Role
from gateway.db.tenancy import TenantScope
from gateway.errors import GatewayError
from gateway.ops import debug
from gateway.ops.health import system_health
from gateway.ops.operator_auth import (
    clear_session,
    csrf_ok,
    csrf_token,
    operator_principal,
    same_origin,
    set_session,
)
from gateway.ops.production import production_checks
from gateway.ops.runtime import OpsRuntime, runtime_of
from gateway.services import audit
from gateway.services import auth as auth_service
from gateway.services.context import ServiceContext

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

PAGES = {
    "/system-health": "System health",
    "/production-readiness": "Production readiness",
    "/admin-debug": "Admin debug",
}
NOTICES = {
    "retried": "The message is queued again; the outbox worker will deliver it.",
    "closed": "The circuit is closed; the next call goes out to the provider.",
    "missing": "Nothing to retry: it was already retried or is gone.",
    "csrf": "The form expired; try again.",
}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes browsers send `Origin: null` on POST
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}
# If the login service grows a second factor, the form's code is passed under its name.
_CODE_PARAMS = ("totp_code", "code", "otp", "totp")


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    ops = runtime_of(request)
    context.setdefault("principal", request.scope.get("state", {}).get("principal"))
    response = templates.TemplateResponse(
        request,
        template,
        {
            "pages": PAGES,
            "path": request.url.path,
            "csrf": csrf_token(request, ops.settings),
            "env": ops.settings.app_env,
            **context,
        },
        status_code=status,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def _guard(request: Request) -> Response | None:
    """None if a platform admin is logged in; otherwise the login redirect or a 403 page."""
    ops = runtime_of(request)
    principal, _why = operator_principal(request, ops.settings)
    if principal is None:
        return _redirect(f"/login?next={request.url.path}")
    if principal.role is not Role.PLATFORM_ADMIN:
        return _page(
            request, "login.html", status=403, error="These pages are for platform admins.", next=""
        )
    return None


async def login_form(request: Request) -> Response:
    nxt = request.query_params.get("next", "")
    return _page(
        request, "login.html", next=nxt if nxt in PAGES else "/system-health", principal=None
    )


async def login_submit(request: Request) -> Response:
    ops = runtime_of(request)
    form = await request.form()
    nxt = str(form.get("next") or "")
    nxt = nxt if nxt in PAGES else "/system-health"
    if not same_origin(request):
        return _page(request, "login.html", status=403, error="Cross-site login refused.", next=nxt)
    email, password, code = (str(form.get(k) or "") for k in ("email", "password", "code"))
    state = request.scope.get("state", {})
    ctx = ServiceContext(
        settings=ops.settings,
        database=ops.database,
        cipher=ops.cipher,
        request_id=state.get("request_id"),
        ip=request.client.host if request.client else None,
    )
    kwargs: dict[str, Any] = {}
    params = inspect.signature(auth_service.login).parameters
    for name in _CODE_PARAMS:
        if name in params and code:
            kwargs[name] = code
            break
    try:
        # The same login limit as the GraphQL `login` (per account and per IP), when installed.
        limiter = getattr(request.app.state, "rate_limiter", None)
        if limiter is not None:
            try:
                await limiter.check_auth(ip=ctx.ip, account=email)
            except GatewayError as exc:
                return _page(
                    request, "login.html", status=429, error=exc.message, next=nxt, principal=None
                )
        pair = await auth_service.login(ctx, email, password, **kwargs)
    except GatewayError as exc:
        return _page(
            request,
            "login.html",
            status=401,
            error=exc.message,
            next=nxt,
            email=email,
            principal=None,
        )
    if pair.user.role is not Role.PLATFORM_ADMIN:
        return _page(
            request,
            "login.html",
            status=403,
            error="These pages are for platform admins.",
            next=nxt,
            principal=None,
        )
    response = _redirect(nxt)
    secure = ops.settings.app_url.startswith("https://") or request.url.scheme == "https"
    set_session(response, pair.access_token, ops.settings, secure)
    return response


async def logout(request: Request) -> Response:
    form = await request.form()
    response = _redirect("/login")
    if csrf_ok(request, runtime_of(request).settings, str(form.get("csrf") or "")):
        clear_session(response)
    return response


async def system_health_page(request: Request) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    return _page(request, "system_health.html", health=await system_health(runtime_of(request)))


async def production_readiness_page(request: Request) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    ops = runtime_of(request)
    checks = await production_checks(
        ops.settings, ops.database, ops.schema, _probe_context(ops, request)
    )
    failed = [c for c in checks if not c.ok]
    return _page(request, "production_readiness.html", checks=checks, failed=failed)


def _probe_context(ops: OpsRuntime, request: Request) -> Any:
    from schema.context import GraphQLContext

    state = request.scope.get("state", {})
    return GraphQLContext(
        settings=ops.settings,
        database=ops.database,
        cipher=ops.cipher,
        principal=None,
        request_id=state.get("request_id"),
        ip=None,
        request=None,
        response=None,
    )


async def admin_debug_page(request: Request) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    ops = runtime_of(request)
    request_id = request.query_params.get("request_id", "").strip()[:64]
    found = (
        [r for r in ops.window.recent_errors if r.request_id == request_id] if request_id else []
    )
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return _page(
        request,
        "admin_debug.html",
        errors=list(ops.window.recent_errors),
        slow=list(ops.window.recent_slow),
        operations=ops.window.stats().operations[:10],
        slow_ms=ops.settings.slow_operation_ms,
        logins=await debug.failed_logins(ops.database),
        dead=await debug.dead_letters(ops.database),
        circuits=await debug.open_circuits(ops.database, ops.app_state),
        request_id=request_id,
        found=found,
        request_audit=await debug.audit_for_request(ops.database, request_id) if request_id else [],
        notice=notice,
    )


async def retry(request: Request) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    ops = runtime_of(request)
    form = await request.form()
    if not csrf_ok(request, ops.settings, str(form.get("csrf") or "")):
        return _redirect("/admin-debug?notice=csrf")
    principal = request.scope["state"]["principal"]
    try:
        clinic_id = uuid.UUID(str(form.get("clinic_id")))
        what = str(form.get("what"))
        if what == "dead_letter":
            target = str(uuid.UUID(str(form.get("id"))))
            done = await debug.retry_dead_letter(ops.database, clinic_id, uuid.UUID(target))
            action, notice = "ops.dead_letter_retried", "retried"
        elif what == "circuit":
            target = str(form.get("plugin"))[:40]
            done = debug.close_circuit(ops.app_state, clinic_id, target)
            action, notice = "ops.circuit_closed", "closed"
        else:
            return _redirect("/admin-debug")
    except ValueError:
        return _redirect("/admin-debug?notice=missing")
    if not done:
        return _redirect("/admin-debug?notice=missing")
    # Platform admins acting on a clinic's data are audited, like every cross-clinic action.
    async with ops.database.transaction(TenantScope.cross_clinic()) as db:
        audit.record(
            db,
            action,
            clinic_id=clinic_id,
            actor_user_id=principal.user_id,
            target_type=what,
            target_id=target,
            request_id=request.scope["state"].get("request_id"),
            ip=request.client.host if request.client else None,
        )
    return _redirect(f"/admin-debug?notice={notice}")


def page_routes() -> list[Route]:
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/system-health", system_health_page, methods=["GET"]),
        Route("/production-readiness", production_readiness_page, methods=["GET"]),
        Route("/admin-debug", admin_debug_page, methods=["GET"]),
        Route("/admin-debug/retry", retry, methods=["POST"]),
    ]
