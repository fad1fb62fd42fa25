"""Stripe's webhook signature scheme, for the fake provider and the tests.

`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed by whsec_…>`.
The plugin verifies with the stripe SDK itself (`stripe.Webhook.construct_event`);
this module only produces signatures the way Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Stripe-Signature"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"
