"""The GraphQL schema: types, queries, mutations, dataloaders."""

from __future__ import annotations

import strawberry
from strawberry.extensions import QueryDepthLimiter

from gateway.settings import Settings
from schema.errors import ErrorCodes
from schema.mutations import Mutation
from schema.queries import Query


def build_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[QueryDepthLimiter(max_depth=settings.max_query_depth), ErrorCodes],
    )
