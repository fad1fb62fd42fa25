"""The GraphQL schema: types, queries, mutations, dataloaders."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext
from strawberry.extensions import QueryDepthLimiter

from gateway.settings import Settings
from schema.errors import ErrorCodes
from schema.mutations import Mutation
from schema.queries import Query


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes logs the unexpected errors (with the request id); errors the
        # caller caused are answered, not logged as server faults.
        return None


def build_schema(settings: Settings) -> strawberry.Schema:
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        extensions=[lambda: QueryDepthLimiter(max_depth=settings.max_query_depth), ErrorCodes],
    )
