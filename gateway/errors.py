"""Errors a caller can act on. Each carries a machine-readable code.

The GraphQL layer turns these into errors with `extensions.code`; anything else
that escapes a resolver is an internal error and is masked outside development.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = {k: v for k, v in extensions.items() if v is not None}


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class ValidationFailed(GatewayError):
    code = "VALIDATION"


class Conflict(GatewayError):
    code = "CONFLICT"


class AccountLocked(GatewayError):
    code = "ACCOUNT_LOCKED"
