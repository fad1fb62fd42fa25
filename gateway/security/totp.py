"""TOTP (RFC 6238, via pyotp) and single-use recovery codes.

Secrets are stored encrypted (DataCipher); recovery codes only as SHA-256 hashes:
they carry 80 random bits, so a fast hash is enough and checking all ten is cheap.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import pyotp

DIGITS = 6
INTERVAL = 30
# One step either side absorbs clock drift between the phone and the server.
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed by hand


def new_secret() -> str:
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=account, issuer_name=issuer
    )


def current_code(secret: str, at: float | None = None) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).at(
        int(at if at is not None else time.time())
    )


def looks_like_totp(code: str) -> bool:
    code = code.strip().replace(" ", "")
    return len(code) == DIGITS and code.isdigit()


def verify(secret: str, code: str, last_step: int | None, at: float | None = None) -> int | None:
    """The time step `code` belongs to, or None. A step already used is refused (no replay)."""
    code = code.strip().replace(" ", "")
    if not looks_like_totp(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    now_step = int((at if at is not None else time.time()) // INTERVAL)
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.at(step * INTERVAL), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    def one() -> str:
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
        return "-".join(raw[i : i + 4] for i in range(0, 16, 4))

    return [one() for _ in range(RECOVERY_CODE_COUNT)]


def hash_recovery_code(code: str) -> str:
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normal.encode()).hexdigest()
