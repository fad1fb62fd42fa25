"""Razorpay's signature schemes, for the fake provider and the tests.

- checkout callback: `razorpay_signature` = hex HMAC-SHA256 of "<order_id>|<payment_id>"
  keyed by the account's key secret;
- webhooks: `X-Razorpay-Signature` = hex HMAC-SHA256 of the raw body keyed by the
  webhook secret; `X-Razorpay-Event-Id` names the event.

The plugin verifies with the razorpay SDK's own utility; this module only signs.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Razorpay-Signature"
EVENT_ID_HEADER = "X-Razorpay-Event-Id"


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def checkout_signature(key_secret: str, order_id: str, payment_id: str) -> str:
    return hmac_hex(key_secret, f"{order_id}|{payment_id}".encode())
