"""The schema extension that answers compilable queries before graphql-core executes them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension

from gateway.errors import GatewayError
from gateway.ops.metrics import COMPILED_READS
from gateway.security.graphql_limits import LruCache
from schema.compiled.plan import OperationPlan, compile_operation
from schema.compiled.run import Fallback, execute

log = logging.getLogger("santana.compiled")

_NOT_COMPILABLE = object()  # cached too: an uncompilable query is examined once
_plans = LruCache(1024)


def plan_for(
    schema: Any, query: str | None, document: Any, name: str | None
) -> OperationPlan | None:
    if not query:
        return None
    key = (query, name, id(schema))
    plan = _plans.fetch(key)
    if plan is None:
        plan = compile_operation(schema, document, name) or _NOT_COMPILABLE
        _plans.put(key, plan)
    return None if plan is _NOT_COMPILABLE else plan  # type: ignore[return-value]


class CompiledReads(SchemaExtension):
    """Runs after the limits (validation, cost): sets the result when the plan answered it."""

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        if ctx.result is None and ctx.graphql_document is not None:
            schema = ctx.schema._schema
            plan = plan_for(schema, ctx.query, ctx.graphql_document, ctx.operation_name)
            if plan is not None:
                data = await _answer(plan, schema, ctx)
                if data is not None:
                    ctx.result = GraphQLExecutionResult(data=data, errors=None)
        yield


async def _answer(plan: OperationPlan, schema: Any, ctx: Any) -> dict[str, Any] | None:
    """The plan's answer, or None for the ordinary executor (which reports any error)."""
    variables = get_variable_values(schema, plan.variable_definitions, ctx.variables or {})
    if isinstance(variables, list):  # coercion errors: reported by the ordinary executor
        return None
    try:
        data = await execute(plan.root, ctx.context, variables)
    except (Fallback, GatewayError, GraphQLError) as exc:
        # Nothing is lost by trying again: the reads audited so far are queued per request
        # and collapse with the same reads of the second attempt.
        log.debug("compiled read fell back: %s", exc)
        COMPILED_READS.labels("fallback").inc()
        return None
    COMPILED_READS.labels("answered").inc()
    return data
