"""The GraphQL schema: types, queries, mutations, dataloaders."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.security.graphql_limits import (
    CachedParser,
    CachedValidation,
    CostLimit,
    NoIntrospection,
    operation_limits_rule,
)
from gateway.settings import Settings
from schema.compiled import CompiledReads
from schema.errors import ErrorCodes
from schema.mutations import Mutation
from schema.queries import Query
from schema.subscriptions import Subscription


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorCodes logs the unexpected errors (with the request id); errors the
        # caller caused are answered, not logged as server faults.
        return None


def build_schema(settings: Settings) -> strawberry.Schema:
    # Rule classes are made once per schema: validation results are cached per
    # (query text, rules), so the limits cost nothing on a repeated query.
    rules: tuple[type[ASTValidationRule], ...] = (
        operation_limits_rule(settings.max_query_depth, settings.graphql_max_aliases),
    )
    if not settings.graphql_introspection_enabled:
        rules += (NoIntrospection,)
    hide_suggestions = not settings.graphql_field_suggestions_enabled
    extensions: list[Any] = [
        CachedParser,
        lambda: CachedValidation(rules, hide_suggestions),
        lambda: CostLimit(settings.graphql_max_cost, settings.max_page_size),
    ]
    if settings.graphql_compiled_reads:  # after the limits: only accepted operations get here
        extensions.append(CompiledReads)
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[*extensions, ErrorCodes],
        config=StrawberryConfig(
            disable_field_suggestions=hide_suggestions,
            batching_config={"max_operations": settings.graphql_max_batch},
        ),
    )
