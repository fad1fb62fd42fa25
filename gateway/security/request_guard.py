"""Limits on the GraphQL HTTP request before the schema sees it.

A mixin for the strawberry ASGI view: body size, batch size (batched operations
run one after another, as they share the request's database session), persisted
queries, document size and token count, and the per-request timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, Lexer, Source, TokenKind
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.types import ExecutionResult

from gateway.security.errors import LimitExceeded, error_body
from gateway.security.persisted_queries import PersistedQueries

if TYPE_CHECKING:
    from gateway.settings import Settings


class RequestRejected(Exception):
    """The whole HTTP request is refused (not one operation of it)."""

    def __init__(self, status: int, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extensions = status, code, message, extensions


@lru_cache(maxsize=1024)
def count_tokens(query: str, limit: int) -> int:
    """Lexical tokens of `query`, counting stops just past `limit` (cached by query text)."""
    lexer = Lexer(Source(query))
    count = 0
    try:
        while lexer.advance().kind != TokenKind.EOF:
            count += 1
            if count > limit:
                break
    except GraphQLError:
        pass  # a syntax error is reported by the parser, with its position
    return count


def limit_result(exc: LimitExceeded) -> ExecutionResult:
    return ExecutionResult(
        data=None,
        errors=[GraphQLError(exc.message, extensions={"code": exc.code, **exc.extensions})],
    )


class RequestGuard:
    """Mix in before strawberry's `GraphQL` view; call `init_guard(settings)` in __init__."""

    settings: Settings
    persisted: PersistedQueries

    def init_guard(self, settings: Settings) -> None:
        self.persisted = PersistedQueries(settings)

    def check_document(self, query: str | None) -> None:
        if query is None:
            return
        s = self.settings
        size = len(query.encode())
        if size > s.graphql_max_document_bytes:
            raise LimitExceeded(
                "DOCUMENT_TOO_LARGE",
                f"The query is {size} bytes; at most {s.graphql_max_document_bytes} are allowed.",
                limit="documentSize",
                maxBytes=s.graphql_max_document_bytes,
            )
        # A token is at least one character: short documents cannot be over the limit.
        if (
            size > s.graphql_max_tokens
            and count_tokens(query, s.graphql_max_tokens) > s.graphql_max_tokens
        ):
            raise LimitExceeded(
                "TOKEN_LIMIT_EXCEEDED",
                f"The query has more than {s.graphql_max_tokens} tokens.",
                limit="tokens",
                maxTokens=s.graphql_max_tokens,
            )

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:  # type: ignore[override]
        if isinstance(request, Request):
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > self.settings.graphql_max_body_bytes:
                return self._reject(
                    RequestRejected(
                        413,
                        "REQUEST_TOO_LARGE",
                        f"The request body is over {self.settings.graphql_max_body_bytes} bytes.",
                        limit="bodySize",
                    )
                )
        try:
            kwargs: dict[str, Any] = {}
            if context is not None:
                kwargs["context"] = context
            if root_value is not None:
                kwargs["root_value"] = root_value
            return await super().run(request, **kwargs)  # type: ignore[misc]
        except RequestRejected as exc:
            return self._reject(exc)

    @staticmethod
    def _reject(exc: RequestRejected) -> Response:
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.extensions), status_code=exc.status
        )

    def _validate_batch_request(self, request_data: list[Any], protocol: Any) -> None:
        maximum = self.settings.graphql_max_batch
        if len(request_data) > maximum:
            raise RequestRejected(
                400,
                "BATCH_LIMIT_EXCEEDED",
                f"{len(request_data)} operations in one request; at most {maximum} are allowed.",
                limit="batch",
                maxOperations=maximum,
            )
        super()._validate_batch_request(request_data, protocol)  # type: ignore[misc]

    async def execute_operation(self, **kwargs: Any) -> Any:
        request_data = kwargs["request_data"]
        try:
            async with asyncio.timeout(self.settings.graphql_timeout_seconds):
                if isinstance(request_data, list):
                    # One after another: the operations share one database session.
                    results = []
                    for item in request_data:
                        results.append(
                            await self.execute_single(**{**kwargs, "request_data": item})
                        )
                    return results
                return await super().execute_operation(**kwargs)  # type: ignore[misc]
        except TimeoutError:
            exc = LimitExceeded(
                "REQUEST_TIMEOUT",
                f"The request ran over {self.settings.graphql_timeout_seconds:g} s and was stopped.",
                limit="timeout",
            )
            if isinstance(request_data, list):
                return [limit_result(exc) for _ in request_data]
            return limit_result(exc)

    async def execute_single(self, **kwargs: Any) -> Any:
        data = kwargs["request_data"]
        try:
            query = await self.persisted.resolve(data.query, data.extensions)
            self.check_document(query)
        except LimitExceeded as exc:
            return limit_result(exc)
        if query != data.query:
            kwargs["request_data"] = dataclasses.replace(data, query=query)
        return await super().execute_single(**kwargs)  # type: ignore[misc]
