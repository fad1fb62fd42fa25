"""Serving a fake provider's wire API on a real local port, for the provider test suites.

The EMR, payment and email plugins talk to their providers through SDKs (fhirclient,
stripe, razorpay, httpx) that open their own connections, so an in-process ASGI
transport will not do: each fake must answer on 127.0.0.1 like the real service.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


def serve(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:
    """Serve `app` on a free local port in a daemon thread; returns its base URL.

    The server gets its own thread (and event loop) because the SDKs under test block.
    Nothing stops it: prefer `served`, unless it should live as long as the process.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # Wait (up to 10 s) until it listens, so the first request is not refused.
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server, thread


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """`serve(app)` for the length of a `with` block: yields the base URL, then stops it."""
    url, server, thread = serve(app)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(5)
