"""Run a compiled plan: fetch level by level, then shape rows into the response's dicts.

Each object field is completed for every source of its level at once (one fetch, one
statement at most), so a query costs at most one statement per nesting level, like the
dataloaders; leaves are read and serialized in a plain loop, with no resolver, coroutine
or per-field bookkeeping. Anything the ordinary executor would report as an error (a
service refusal, a null where the schema forbids one) raises Fallback: the caller then
runs the operation the ordinary way, which reports it with path and code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphql.execution.values import get_argument_values

from schema.compiled.fields import Fetched, Held, Root
from schema.compiled.plan import FieldPlan, ObjectPlan

if TYPE_CHECKING:
    from schema.context import GraphQLContext


class Fallback(Exception):
    """Answer this operation with the ordinary executor."""


class Run:
    """One execution: the request's context and loaders, and rows fetched along the way."""

    __slots__ = ("counselors", "ctx", "loaders", "variables")

    def __init__(self, ctx: GraphQLContext, variables: Any) -> None:
        self.ctx = ctx
        self.loaders = ctx.loaders
        self.variables = variables
        # id(session row) -> (row, counselor or None: not visible), read with the sessions.
        # Holding the row keeps it alive, so no other object can take its id during the run.
        self.counselors: dict[int, tuple[Any, Any]] = {}

    def args(self, f: FieldPlan) -> dict[str, Any]:
        if not f.args_needed:
            return {}
        assert f.definition is not None
        return get_argument_values(f.definition, f.node, self.variables)


async def execute(plan: ObjectPlan, ctx: GraphQLContext, variables: Any) -> dict[str, Any]:
    run = Run(ctx, variables)
    data: dict[str, Any] = {}
    for f in plan.fields:
        if isinstance(f.entry, str):
            data[f.key] = f.entry
            continue
        assert isinstance(f.entry, Root)
        value = await f.entry.fetch(run, run.args(f), f.sub)  # type: ignore[arg-type]
        data[f.key] = (await _complete(run, f, [value]))[0]
    return data


async def _complete(run: Run, f: FieldPlan, values: list[Any]) -> list[Any]:
    """Shape one object field's values (one per source; a list each when is_list)."""
    sub = f.sub
    assert sub is not None
    if f.is_list:
        flat = [item for items in values for item in items]
        shaped = iter(await _shape(run, sub, flat))
        return [[next(shaped) for _ in items] for items in values]
    present = [v for v in values if v is not None]
    if len(present) != len(values) and not f.nullable:
        raise Fallback(f"{f.key}: null where the schema forbids it")
    shaped = iter(await _shape(run, sub, present))
    return [next(shaped) if v is not None else None for v in values]


async def _shape(run: Run, plan: ObjectPlan, sources: list[Any]) -> list[dict[str, Any]]:
    if not sources:
        return []
    related: dict[str, list[Any]] = {}
    for f in plan.related:
        entry = f.entry
        if isinstance(entry, Held):
            get = entry.get
            values = [get(s) for s in sources]
        else:
            assert isinstance(entry, Fetched)
            values = await entry.fetch(run, sources, run.args(f), f.sub)  # type: ignore[arg-type]
        related[f.key] = await _complete(run, f, values)
    out = []
    fields = [(f.key, f.entry, f.serialize, f.nullable, related.get(f.key)) for f in plan.fields]
    for i, source in enumerate(sources):
        row: dict[str, Any] = {}
        for key, entry, serialize, nullable, done in fields:
            if done is not None:
                row[key] = done[i]
            elif serialize is None:  # __typename
                row[key] = entry
            else:
                value = entry.get(source)  # type: ignore[union-attr]
                if value is None:
                    if not nullable:
                        raise Fallback(f"{key}: null where the schema forbids it")
                    row[key] = None
                else:
                    row[key] = serialize(value)
        out.append(row)
    return out
