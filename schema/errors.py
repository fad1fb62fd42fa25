"""Turn resolver exceptions into GraphQL errors a client can act on.

GatewayError subclasses carry a code that goes to `extensions.code`. Anything else
is a bug: it is logged with the request id and, outside development, masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import GatewayError

log = logging.getLogger("santana.graphql")


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self._convert(error) for error in errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # Subscriptions: each event's result gets the same codes (once; codes already set stay).
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [
                e if (e.extensions or {}).get("code") else self._convert(e) for e in errors
            ]
        yield

    def _convert(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        if isinstance(original, GatewayError):
            return _with(error, original.message, {"code": original.code, **original.extensions})
        if original is None or error.path is None:
            # Parse, validation and variable-coercion errors: the request itself is wrong.
            return _with(error, error.message, {"code": "GRAPHQL_VALIDATION"})
        log.error(
            "unexpected error in %s (request %s)",
            ".".join(str(p) for p in error.path or []),
            request_id,
            exc_info=original,
        )
        settings = getattr(context, "settings", None)
        if settings is not None and settings.app_env == "development":
            message = f"Internal error: {original!r}"
        else:
            message = "Internal server error."
        return _with(error, message, {"code": "INTERNAL", "requestId": request_id})


def _with(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={k: v for k, v in extensions.items() if v is not None},
    )
