"""Mailgun's webhook signature, for the fake provider, the tests and the plugin.

Every webhook carries `signature: {timestamp, token, signature}` where `signature`
is the hex HMAC-SHA256 of `timestamp + token` keyed by the account's HTTP webhook
signing key. The token is random per request: a token seen before is a replay.
"""

from __future__ import annotations

import hashlib
import hmac


def signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def valid(signing_key: str, timestamp: str, token: str, given: str) -> bool:
    return hmac.compare_digest(signature(signing_key, timestamp, token), given)
