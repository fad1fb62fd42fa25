"""Watch a demo clinic's session changes live (run `make run` first).

    .venv/bin/python docs/realtime-demo.py [email] [gateway URL]

Logs in as the clinic admin of the demo clinic Bright Futures (or `email`), opens a
graphql-transport-ws websocket, subscribes to `sessionChanged` and prints each event.
Book, reschedule or cancel a session in GraphiQL (http://127.0.0.1:8000/graphql) or
the front end, and it appears here. With REDIS_URL set, start a second gateway on
another port and book through that one: the event still arrives.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import websockets

LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }"
WATCH = """subscription { sessionChanged { change occurredAt
  session { id status startsAt counselor { fullName } } } }"""


async def main(email: str, base: str) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{base}/graphql",
            json={"query": LOGIN, "variables": {"e": email, "p": "santana-demo-pass"}},
        )
    token = answer.json()["data"]["login"]["accessToken"]
    url = base.replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        print(json.loads(await ws.recv()))  # connection_ack
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": WATCH}}))
        print(f"watching session changes as {email}; Ctrl-C to stop")
        async for message in ws:
            print(json.dumps(json.loads(message), indent=2))


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0] if args else "admin@brightfutures.test",
            args[1] if len(args) > 1 else "http://127.0.0.1:8000",
        )
    )
