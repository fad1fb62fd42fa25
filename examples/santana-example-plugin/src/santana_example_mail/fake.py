"""An in-process fake of the relay's wire API, for tests (use with httpx.ASGITransport)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class FakeRelay:
    token: str
    down: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _by_key: dict[str, str] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/account", self._account),
                Route("/v1/health", self._health),
                Route("/v1/messages", self._messages, methods=["POST"]),
            ]
        )

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    async def _account(self, request: Request) -> JSONResponse:
        if self.down:
            return JSONResponse({"error": "unavailable"}, 503)
        if not self._authorized(request):
            return JSONResponse({"error": "bad token"}, 401)
        return JSONResponse({"sender": "ok"})

    async def _health(self, request: Request) -> JSONResponse:
        return (
            JSONResponse({"status": "down"}, 503) if self.down else JSONResponse({"status": "ok"})
        )

    async def _messages(self, request: Request) -> JSONResponse:
        if self.down:
            return JSONResponse({"error": "unavailable"}, 503)
        if not self._authorized(request):
            return JSONResponse({"error": "bad token"}, 401)
        body = await request.json()
        if not body.get("to"):
            return JSONResponse({"error": "no recipients"}, 422)
        key = request.headers.get("idempotency-key")
        if key and key in self._by_key:  # a retried delivery is not sent twice
            return JSONResponse({"id": self._by_key[key]}, 202)
        message_id = f"msg_{next(self._ids)}"
        if key:
            self._by_key[key] = message_id
        self.sent.append(body)
        return JSONResponse({"id": message_id}, 202)
