"""A browser-like graphql-transport-ws client (the `websockets` package) and a served app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
import websockets
from starlette.applications import Starlette

PROTOCOL = "graphql-transport-ws"

SESSION_CHANGED = """subscription { sessionChanged {
  change occurredAt session { id status startsAt counselor { email } patient { fullName } } } }"""
PAYMENT_CHANGED = "subscription { paymentChanged { paymentId status previousStatus amount } }"
EMAIL_CHANGED = "subscription { emailStatusChanged { messageId notification status } }"
SCHEDULE = """mutation($input: ScheduleSessionInput!) { scheduleSession(input: $input) { id } }"""
CANCEL = """mutation($id: ID!) { cancelSession(id: $id, reason: "sick") { id status } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """`app` on a real local port (same event loop as the test); yields its ws:// URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


class Subscriber:
    """One websocket, initialised with a token; `subscribe`, then `next` payloads."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = 0

    async def subscribe(self, query: str) -> str:
        self.ids += 1
        op_id = str(self.ids)
        await self.ws.send(
            json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}})
        )
        return op_id

    async def message(self, within: float = 5) -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), within)
            message = json.loads(raw)
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def next(self, within: float = 5) -> dict[str, Any]:
        message = await self.message(within)
        assert message["type"] == "next", message
        return message["payload"]

    async def nothing_within(self, seconds: float) -> None:
        """No message arrives within `seconds`."""
        with contextlib.suppress(TimeoutError):
            message = await self.message(seconds)
            raise AssertionError(f"unexpected message {message}")


@contextlib.asynccontextmanager
async def connect(url: str, token: str | None) -> AsyncIterator[Subscriber]:
    """A websocket that sent connection_init with `token` and got connection_ack."""
    async with websockets.connect(url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        yield Subscriber(ws)


async def refused(url: str, token: str | None) -> tuple[int, str]:
    """Close code and reason when connection_init with `token` is refused."""
    async with websockets.connect(url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with contextlib.suppress(websockets.ConnectionClosed):
            message = await asyncio.wait_for(ws.recv(), 5)
            raise AssertionError(f"expected a refusal, got {message!r}")
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


async def graphql(ws_url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """POST an operation to the HTTP side of the gateway behind `ws_url`; insists on no errors."""
    import httpx

    http_url = ws_url.replace("ws://", "http://", 1)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            http_url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]
