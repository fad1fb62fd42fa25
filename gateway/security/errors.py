"""Errors of the protection layer: each limit answers with its own code."""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError


class LimitExceeded(GatewayError):
    """A request went over a configured limit; `code` names which one."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message, **extensions)
        self.code = code


class RateLimited(GatewayError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(
            f"Too many requests; try again in {retry_after} seconds.",
            retryAfterSeconds=retry_after,
            scope=scope,
        )
        self.retry_after = retry_after


def error_body(code: str, message: str, **extensions: Any) -> dict[str, Any]:
    """A GraphQL-shaped error document for answers given before GraphQL runs."""
    ext = {"code": code, **{k: v for k, v in extensions.items() if v is not None}}
    return {"data": None, "errors": [{"message": message, "extensions": ext}]}
