"""A local fake of the part of Mailgun's HTTP API the plugin uses, with Mailgun's signatures.

    GET  /v3/domains/{domain}              Basic api:<key> -> 200 | 401 | 404
    POST /v3/{domain}/messages             Basic api:<key>, form fields -> 200 {"id", "message"}
                                           | 400 | 401 | 429 | 5xx
    GET  /_test/messages                   what was accepted (the developer's view in the demo)

`event_for(message_id, event)` builds a signed webhook payload like Mailgun's.
Used by the tests (served on a local port) and, through `dev_fake_app()`, by the
demo at /_fakes/mail_mailgun, where accepted messages also land in the development
mailbox.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.notifications.mailbox import Mailbox, MailboxEntry
from plugins.mail_mailgun import signing

DEMO_DOMAIN = "mg.lotus-ivf.example"
DEMO_API_KEY = "key-demo-lotus-ivf-local-fake"  # noqa: S105  (the local fake's demo credentials)
DEMO_SIGNING_KEY = "demo-webhook-signing-key-lotus-ivf"  # noqa: S105  (the local fake's demo credentials)


# The demo reports delivery a moment after accepting, as providers do.
REPORT_DELAY_SECONDS = 1.0


@dataclass
class SignedWebhook:
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeMailgun:
    # domain -> API key
    domains: dict[str, str] = field(default_factory=lambda: {DEMO_DOMAIN: DEMO_API_KEY})
    signing_key: str = DEMO_SIGNING_KEY
    mailbox: Mailbox | None = None
    # Where to post signed delivery events (the gateway's /webhooks base), as the real
    # provider does; None: events are only built on request (the tests drive them).
    report_to: str | None = None
    _reports: set[asyncio.Task[None]] = field(default_factory=set)
    down: bool = False
    fail_next: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    accepted: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v3/domains/{domain}", self._domain, methods=["GET"]),
                Route("/v3/{domain}/messages", self._send, methods=["POST"]),
                Route("/_test/messages", self._messages, methods=["GET"]),
            ]
        )

    def _authorised(self, request: Request, domain: str) -> bool | None:
        """None: no such domain; False: wrong key."""
        if domain not in self.domains:
            return None
        auth = request.headers.get("authorization", "")
        try:
            user, _, key = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            return False
        return user == "api" and key == self.domains[domain]

    async def _domain(self, request: Request) -> Response:
        ok = self._authorised(request, request.path_params["domain"])
        if ok is None:
            return JSONResponse({"message": "Domain not found"}, status_code=404)
        if not ok:
            return Response("Forbidden", status_code=401)
        return JSONResponse({"domain": {"name": request.path_params["domain"], "state": "active"}})

    async def _send(self, request: Request) -> Response:
        self.attempts += 1
        if self.down or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            failed = JSONResponse(
                {"message": "temporarily unavailable"}, status_code=self.fail_status
            )
            if self.retry_after is not None:
                failed.headers["Retry-After"] = self.retry_after
            return failed
        domain = request.path_params["domain"]
        ok = self._authorised(request, domain)
        if ok is None:
            return JSONResponse({"message": "Domain not found"}, status_code=404)
        if not ok:
            return Response("Forbidden", status_code=401)
        form = await request.form()
        to = [str(v) for v in form.getlist("to")]
        if not to or any("@" not in a or a.endswith(".invalid") for a in to):
            return JSONResponse({"message": "to parameter is not a valid address"}, status_code=400)
        if not form.get("subject") or not form.get("from"):
            return JSONResponse({"message": "from and subject are required"}, status_code=400)
        message_id = (
            f"{time.strftime('%Y%m%d%H%M%S')}.{next(self._ids)}{secrets.token_hex(6)}@{domain}"
        )
        variables = {k[2:]: str(v) for k, v in form.multi_items() if k.startswith("v:")}
        record = {
            "id": message_id,
            "domain": domain,
            "to": to,
            "from": str(form["from"]),
            "subject": str(form["subject"]),
            "text": str(form.get("text") or ""),
            "html": str(form["html"]) if form.get("html") else None,
            "reply_to": str(form["h:Reply-To"]) if form.get("h:Reply-To") else None,
            "variables": variables,
        }
        self.accepted.append(record)
        if self.mailbox is not None:
            self.mailbox.put(
                MailboxEntry(
                    id=f"mailgun-{message_id}",
                    clinic_id=variables.get("santana_clinic"),
                    via="mail_mailgun (fake)",
                    to=to,
                    subject=record["subject"],
                    text=record["text"],
                    html=record["html"],
                    sender=record["from"],
                    reply_to=record["reply_to"],
                    tags=variables,
                )
            )
        if self.report_to:
            self._schedule_report(record)
        return JSONResponse({"id": f"<{message_id}>", "message": "Queued. Thank you."})

    async def _messages(self, request: Request) -> Response:
        return JSONResponse(
            [{"id": m["id"], "to": m["to"], "subject": m["subject"]} for m in self.accepted]
        )

    def _schedule_report(self, record: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._report(record))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _report(self, record: dict[str, Any]) -> None:
        """Delivered (or a permanent failure, for a local part ending in "bounce")."""
        await asyncio.sleep(REPORT_DELAY_SECONDS)
        clinic = record["variables"].get("santana_clinic")
        if not clinic or not self.report_to:
            return
        if record["to"][0].split("@")[0].endswith("bounce"):
            event = self.event_for(record["id"], "failed", severity="permanent", reason="bounce")
        else:
            event = self.event_for(record["id"], "delivered")
        signed = self.sign(event)
        url = f"{self.report_to.rstrip('/')}/{clinic}/mail_mailgun"
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                await client.post(url, content=signed.body, headers=signed.headers)
        except httpx.HTTPError:
            pass  # Mailgun would retry; the fake gives up

    # --- webhooks ----------------------------------------------------------------------

    def event_for(self, message_id: str, event: str, **extra: Any) -> dict[str, Any]:
        record = next(m for m in self.accepted if m["id"] == message_id)
        return {
            "id": secrets.token_urlsafe(16),
            "timestamp": time.time(),
            "event": event,
            "recipient": record["to"][0],
            "message": {"headers": {"message-id": message_id}},
            "user-variables": dict(record["variables"]),
            **extra,
        }

    def sign(
        self, event_data: dict[str, Any], *, timestamp: int | None = None, token: str | None = None
    ) -> SignedWebhook:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        token = token or secrets.token_hex(25)
        payload = {
            "signature": {
                "timestamp": stamp,
                "token": token,
                "signature": signing.signature(self.signing_key, stamp, token),
            },
            "event-data": event_data,
        }
        return SignedWebhook(json.dumps(payload).encode(), {"Content-Type": "application/json"})


def dev_fake_app() -> Starlette:
    from gateway.settings import load_settings

    settings = load_settings()
    mailbox = Mailbox(settings.dev_mailbox_dir) if settings.dev_mailbox_enabled else None
    fake = FakeMailgun(mailbox=mailbox, report_to=f"{settings.app_url.rstrip('/')}/webhooks")
    return fake.app()
