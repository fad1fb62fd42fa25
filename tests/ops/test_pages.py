"""The operator pages over HTTP: login cookie, admin-only fence, figures, CSRF-checked retry."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import AuditEvent
from gateway.db.tenancy import TenantScope
from gateway.integrations.models import OutboxMessage
from gateway.ops.operator_auth import COOKIE
from gateway.ops.runtime import OpsRuntime
from gateway.settings import Settings
from tests.factories import PASSWORD, World

PAGES = ("/system-health", "/production-readiness", "/admin-debug")


async def login(
    http: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    nxt: str = "/system-health",
    **headers: str,
) -> httpx.Response:
    return await http.post(
        "/login", data={"email": email, "password": password, "next": nxt}, headers=headers
    )


async def logged_in(http: httpx.AsyncClient, world: World) -> None:
    response = await login(http, world.platform_admin.email)
    assert response.status_code == 303, response.text
    http.cookies.set(COOKIE, response.cookies[COOKIE])


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


async def test_pages_send_strangers_to_login_and_refuse_staff(
    http: httpx.AsyncClient, world: World
) -> None:
    for page in PAGES:
        response = await http.get(page)
        assert response.status_code == 303 and response.headers["location"] == f"/login?next={page}"
    form = await http.get("/login?next=/admin-debug")
    assert form.status_code == 200 and 'value="/admin-debug"' in form.text
    assert (
        form.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in form.headers["content-security-policy"]
    )

    staff = await login(http, world.a.admin.email)
    assert staff.status_code == 403 and "platform admins" in staff.text
    assert COOKIE not in staff.cookies
    wrong = await login(http, world.platform_admin.email, "not-the-password")
    assert wrong.status_code == 401 and "Invalid email or password" in wrong.text
    offsite = await login(http, world.platform_admin.email, origin="https://evil.example")
    assert offsite.status_code == 403 and COOKIE not in offsite.cookies


async def test_login_sets_a_strict_httponly_cookie_and_pages_show_the_figures(
    http: httpx.AsyncClient, world: World
) -> None:
    response = await login(http, world.platform_admin.email, nxt="/admin-debug")
    assert response.status_code == 303 and response.headers["location"] == "/admin-debug"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    http.cookies.set(COOKIE, response.cookies[COOKIE])

    health = await http.get("/system-health")
    assert health.status_code == 200 and health.headers["cache-control"] == "no-store"
    for text_ in (
        "Average response time",
        "&lt; 200 ms",
        "Error rate",
        "&lt; 0.5%",
        "Database connections",
        "&lt; 80% of pool",
        "Memory usage",
        "&lt; 85%",
        "API success rate",
        "&gt; 99%",
        "No alerts firing",
    ):
        assert text_ in health.text, text_

    readiness = await http.get("/production-readiness")
    assert readiness.status_code == 200
    page = readiness.text
    # The test settings are development-grade: the page must say so, with the fixes.
    assert "JWT secret" in page and "Set JWT_SECRET to at least 64" in page
    assert "HTTPS app URL" in page and "Set APP_URL" in page
    assert "Introspection off" in page and "schema is introspectable" in page
    assert "Migrations current" in page and "at head" in page
    assert "Backups recent" in page and "santana backup" in page

    debug = await http.get("/admin-debug")
    assert debug.status_code == 200 and "Failed logins" in debug.text


async def test_failed_logins_by_account_and_ip(http: httpx.AsyncClient, world: World) -> None:
    for _ in range(2):
        await login(http, world.a.counselor.email, "wrong-password-2")
    await login(http, "nobody@nowhere.test", "wrong-password-2")
    await logged_in(http, world)
    page = (await http.get("/admin-debug")).text
    accounts = page[
        page.index('id="failed-logins-accounts"') : page.index('id="failed-logins-ips"')
    ]
    assert "counselor@a.test</td><td>2</td>" in accounts
    assert "unknown account</td><td>1</td>" in accounts
    assert "nobody@nowhere.test" not in page  # unknown emails are not recorded
    ips = page[page.index('id="failed-logins-ips"') :]
    assert "127.0.0.1</td><td>3</td>" in ips


async def test_retry_a_dead_letter_needs_the_csrf_token_and_is_audited(
    http: httpx.AsyncClient, world: World, database: Database
) -> None:
    message_id = uuid.uuid4()
    async with database.transaction(TenantScope.cross_clinic()) as db:
        db.add(
            OutboxMessage(
                clinic_id=world.a.clinic.id,
                id=message_id,
                kind="email",
                hook="send_email",
                payload_encrypted="opaque",
                status="dead",
                attempts=8,
                last_error="mailbox provider rejected the message",
            )
        )
    await logged_in(http, world)
    page = (await http.get("/admin-debug")).text
    assert "send_email" in page and "mailbox provider rejected" in page and "clinic-a" in page
    form = {"what": "dead_letter", "clinic_id": str(world.a.clinic.id), "id": str(message_id)}

    forged = await http.post("/admin-debug/retry", data={**form, "csrf": "0" * 64})
    assert forged.headers["location"] == "/admin-debug?notice=csrf"
    cross_site = await http.post(
        "/admin-debug/retry",
        data={**form, "csrf": csrf_of(page)},
        headers={"origin": "https://evil.example"},
    )
    assert cross_site.headers["location"] == "/admin-debug?notice=csrf"
    async with database.transaction(TenantScope.cross_clinic()) as db:
        assert (await db.get(OutboxMessage, (world.a.clinic.id, message_id))).status == "dead"

    done = await http.post("/admin-debug/retry", data={**form, "csrf": csrf_of(page)})
    assert done.status_code == 303 and done.headers["location"] == "/admin-debug?notice=retried"
    after = (await http.get("/admin-debug?notice=retried")).text
    assert "queued again" in after and "No dead letters" in after
    async with database.transaction(TenantScope.cross_clinic()) as db:
        row = await db.get(OutboxMessage, (world.a.clinic.id, message_id))
        assert (row.status, row.attempts) == ("pending", 0)
        audit = await db.scalar(
            select(AuditEvent).where(AuditEvent.action == "ops.dead_letter_retried")
        )
        assert audit.actor_user_id == world.platform_admin.id and audit.target_id == str(message_id)
    again = await http.post("/admin-debug/retry", data={**form, "csrf": csrf_of(page)})
    assert again.headers["location"] == "/admin-debug?notice=missing"


async def test_open_circuit_is_listed_and_can_be_closed(
    http: httpx.AsyncClient, world: World, ops: OpsRuntime, settings: Settings
) -> None:
    breaker = ops.app_state.integrations.breakers.get(world.b.clinic.id, "pay_demo")
    for _ in range(settings.integration_circuit_failures):
        breaker.failure("PROVIDER_UNAVAILABLE", "connection refused")
    await logged_in(http, world)
    page = (await http.get("/admin-debug")).text
    assert 'id="circuits"' in page and "pay_demo" in page and "clinic-b" in page
    closed = await http.post(
        "/admin-debug/retry",
        data={
            "what": "circuit",
            "clinic_id": str(world.b.clinic.id),
            "plugin": "pay_demo",
            "csrf": csrf_of(page),
        },
    )
    assert closed.headers["location"] == "/admin-debug?notice=closed"
    assert ops.app_state.integrations.breakers.get(world.b.clinic.id, "pay_demo").state == "closed"
    assert "All circuits closed" in (await http.get("/admin-debug")).text


async def test_request_id_lookup_and_logout(http: httpx.AsyncClient, world: World) -> None:
    failed = await login(http, world.a.counselor.email, "wrong-password-3")
    request_id = failed.headers["x-request-id"]
    await logged_in(http, world)
    page = (await http.get(f"/admin-debug?request_id={request_id}")).text
    assert f"Request {request_id}" in page and "auth.login" in page and "failure" in page
    out = await http.post("/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]


async def test_login_form_shares_the_login_rate_limit(
    http: httpx.AsyncClient, world: World
) -> None:
    statuses = [
        (await login(http, world.a.counselor.email, "wrong-password-4")).status_code
        for _ in range(11)
    ]
    assert statuses[:10].count(429) == 0 and statuses[10] == 429
    assert (
        COOKIE not in (await login(http, world.platform_admin.email)).cookies
    )  # the IP is limited too
