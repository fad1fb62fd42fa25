"""A local fake of the part of SendGrid's v3 API the plugin uses, with SendGrid's signatures.

    GET  /v3/scopes              Bearer API key -> 200 {"scopes": [...]} | 401
    POST /v3/mail/send           Bearer API key -> 202 + X-Message-Id | 400 | 401 | 429 | 5xx
    GET  /_test/messages         what was accepted (the developer's view in the demo)

`events_for(message_id, event)` builds Event Webhook events for an accepted message
and `sign(events)` signs them like SendGrid (ECDSA). Used by the tests (served on a
local port) and, through `dev_fake_app()`, by the demo at /_fakes/mail_sendgrid,
where accepted messages also land in the development mailbox.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.notifications.mailbox import Mailbox, MailboxEntry
from plugins.mail_sendgrid import signing

DEMO_API_KEY = "SG.demo-bright-futures.local-fake-key"  # noqa: S105  (the local fake's demo credentials)
# The fake's demo signing key (seed-demo and serve run in different processes, so it is fixed).
DEMO_SIGNING_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8ub/rv5hluneMDC5
PnVssAb1FnERqiAZgdEX7XOgJHShRANCAAQAFFrKmZU4QilU92A7CZked56MZast
J8WC0s0plalDsCzOURQVTS3pWR43FWaWWZsDCJuLqsLnxLl4xYzDbW64
-----END PRIVATE KEY-----
"""


# The demo reports delivery a moment after accepting, as providers do.
REPORT_DELAY_SECONDS = 1.0


def _errors(status: int, message: str, field_name: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "field": field_name, "help": None}]}, status_code=status
    )


@dataclass
class SignedEvents:
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeSendGrid:
    api_keys: set[str] = field(default_factory=lambda: {DEMO_API_KEY})
    key: ec.EllipticCurvePrivateKey = field(default_factory=signing.new_key)
    mailbox: Mailbox | None = None
    # Where to post signed delivery events (the gateway's /webhooks base), as the real
    # provider does; None: events are only built on request (the tests drive them).
    report_to: str | None = None
    _reports: set[asyncio.Task[None]] = field(default_factory=set)
    # Outage switches: answer the next `fail_next` sends (or all, while `down`) with this.
    down: bool = False
    fail_next: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    accepted: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    @property
    def public_key(self) -> str:
        return signing.public_key_b64(self.key)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v3/scopes", self._scopes, methods=["GET"]),
                Route("/v3/mail/send", self._send, methods=["POST"]),
                Route("/_test/messages", self._messages, methods=["GET"]),
            ]
        )

    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.api_keys

    async def _scopes(self, request: Request) -> Response:
        if not self._authorised(request):
            return _errors(401, "The provided authorization grant is invalid, expired, or revoked")
        return JSONResponse({"scopes": ["mail.send"]})

    async def _send(self, request: Request) -> Response:
        self.attempts += 1
        if self.down or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            failed = _errors(self.fail_status, "temporarily unavailable")
            if self.retry_after is not None:
                failed.headers["Retry-After"] = self.retry_after
            return failed
        if not self._authorised(request):
            return _errors(401, "The provided authorization grant is invalid, expired, or revoked")
        try:
            mail = json.loads(await request.body())
            to = [t["email"] for p in mail["personalizations"] for t in p["to"]]
            sender = mail["from"]["email"]
            contents = {c["type"]: c["value"] for c in mail["content"]}
            subject = mail["subject"]
        except (ValueError, KeyError, TypeError):
            return _errors(400, "Bad Request", "personalizations")
        if any("@" not in address or address.endswith(".invalid") for address in to):
            return _errors(
                400, "Does not contain a valid address.", "personalizations.0.to.0.email"
            )
        message_id = f"{next(self._ids):04d}{secrets.token_hex(8)}"
        record = {"id": message_id, "to": to, "from": sender, "mail": mail}
        self.accepted.append(record)
        if self.mailbox is not None:
            custom = mail.get("custom_args") or {}
            self.mailbox.put(
                MailboxEntry(
                    id=f"sendgrid-{message_id}",
                    clinic_id=custom.get("santana_clinic"),
                    via="mail_sendgrid (fake)",
                    to=to,
                    subject=subject,
                    text=contents.get("text/plain", ""),
                    html=contents.get("text/html"),
                    sender=f"{mail['from'].get('name', '')} <{sender}>".strip(),
                    reply_to=(mail.get("reply_to") or {}).get("email"),
                    tags=dict(custom),
                )
            )
        if self.report_to:
            self._schedule_report(record)
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    async def _messages(self, request: Request) -> Response:
        return JSONResponse(
            [
                {"id": m["id"], "to": m["to"], "subject": m["mail"].get("subject")}
                for m in self.accepted
            ]
        )

    def _schedule_report(self, record: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._report(record))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _report(self, record: dict[str, Any]) -> None:
        """Processed, then delivered (or bounced, for a local part ending in "bounce")."""
        await asyncio.sleep(REPORT_DELAY_SECONDS)
        clinic = (record["mail"].get("custom_args") or {}).get("santana_clinic")
        if not clinic or not self.report_to:
            return
        bounce = record["to"][0].split("@")[0].endswith("bounce")
        outcome = self.events_for(record["id"], *(("bounce",) if bounce else ("delivered",)))
        if bounce:
            outcome["type"] = "bounce"
        signed = self.sign([self.events_for(record["id"], "processed"), outcome])
        url = f"{self.report_to.rstrip('/')}/{clinic}/mail_sendgrid"
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                await client.post(url, content=signed.body, headers=signed.headers)
        except httpx.HTTPError:
            pass  # SendGrid would retry; the fake gives up

    # --- events ---------------------------------------------------------------------

    def events_for(self, message_id: str, event: str, **extra: Any) -> dict[str, Any]:
        """One Event Webhook event about an accepted message, carrying its custom args."""
        record = next(m for m in self.accepted if m["id"] == message_id)
        return {
            "email": record["to"][0],
            "timestamp": int(time.time()),
            "event": event,
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": f"{message_id}.filter0001.{int(time.time())}.0",
            **(record["mail"].get("custom_args") or {}),
            **extra,
        }

    def sign(self, events: list[dict[str, Any]], timestamp: int | None = None) -> SignedEvents:
        body = json.dumps(events).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return SignedEvents(body, signing.sign(self.key, body, stamp))


def dev_fake_app() -> Starlette:
    from gateway.settings import load_settings

    settings = load_settings()
    mailbox = Mailbox(settings.dev_mailbox_dir) if settings.dev_mailbox_enabled else None
    fake = FakeSendGrid(
        key=signing.load_key(DEMO_SIGNING_KEY_PEM),
        mailbox=mailbox,
        report_to=f"{settings.app_url.rstrip('/')}/webhooks",
    )
    return fake.app()
