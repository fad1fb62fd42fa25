"""The relay's webhook signature: `X-Relay-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`.

The HMAC covers f"{t}." + raw body, keyed with the clinic's webhook secret;
signatures older than TOLERANCE seconds are refused (replay protection).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "x-relay-signature"
TOLERANCE = 300


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(body: bytes, header: str | None, secret: str, now: float | None = None) -> bool:
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > TOLERANCE:
        return False
    expected = sign(body, secret, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
