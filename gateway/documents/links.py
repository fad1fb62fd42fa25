"""Short-lived signed download links: HMAC-SHA256 over who may fetch which document until when.

A link names the document, the user it was issued to (with role and clinic, so the
download is checked against the same permissions again) and its expiry
(DOCUMENT_LINK_TTL_SECONDS). The key is derived from JWT_SECRET, so rotating that
secret also invalidates every outstanding link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from urllib.parse import urlencode

from gateway.auth.principal import Principal
from gateway.db.models import Role
from gateway.errors import Unauthenticated

LABEL = b"santana-document-link-v1"
DOWNLOAD_PATH = "/documents/{document_id}/content"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), LABEL, hashlib.sha256).digest()


def _message(document_id: uuid.UUID, principal: Principal, expires: int) -> bytes:
    clinic = str(principal.clinic_id) if principal.clinic_id else "-"
    return f"{document_id}|{principal.user_id}|{principal.role.value}|{clinic}|{expires}".encode()


def _signature(secret: str, message: bytes) -> str:
    digest = hmac.new(_key(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(
    secret: str, document_id: uuid.UUID, principal: Principal, ttl_seconds: int
) -> tuple[str, int]:
    """The link's path with query, and its expiry (epoch seconds)."""
    expires = int(time.time()) + ttl_seconds
    query = {
        "user": str(principal.user_id),
        "role": principal.role.value,
        "clinic": str(principal.clinic_id) if principal.clinic_id else "-",
        "expires": str(expires),
        "sig": _signature(secret, _message(document_id, principal, expires)),
    }
    return f"{DOWNLOAD_PATH.format(document_id=document_id)}?{urlencode(query)}", expires


def verify(secret: str, document_id: uuid.UUID, query: dict[str, str]) -> Principal:
    """The principal the link was issued to; Unauthenticated if forged or expired."""
    try:
        expires = int(query["expires"])
        principal = Principal(
            user_id=uuid.UUID(query["user"]),
            role=Role(query["role"]),
            clinic_id=None if query["clinic"] == "-" else uuid.UUID(query["clinic"]),
        )
        given = query["sig"]
    except (KeyError, ValueError):
        raise Unauthenticated("The download link is incomplete.", reason="link") from None
    expected = _signature(secret, _message(document_id, principal, expires))
    if not hmac.compare_digest(given, expected):
        raise Unauthenticated("The download link is not valid.", reason="link")
    if expires < time.time():
        raise Unauthenticated("The download link has expired; ask for a new one.", reason="link")
    return principal
