"""GraphQL protection that runs inside the schema: depth, aliases, introspection, cost.

Depth, alias and introspection limits are graphql-core validation rules built
once per schema, so their verdict is cached with the validation result of each
document (`CachedValidation`), not recomputed per request. The cost limit needs
the request's variables (`first: $n`), so the document is compiled once into a
small cost plan (cached by query text) and only the plan is evaluated per request.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    is_interface_type,
    is_object_type,
    parse,
)
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from gateway.security.errors import LimitExceeded

_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)
_MAX_WALK = 64  # recursion guard: fragment cycles are reported by the spec rules, not here
# Depth errors kept the code clients already handle (the query itself is wrong);
# `extensions.limit` says which limit it was, as for every other limit.
DEPTH_CODE = "GRAPHQL_VALIDATION"


def _error(node: Any, code: str, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, node, original_error=LimitExceeded(code, message, **extensions))


# --- validation rules (built once per schema) ---------------------------------------------


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _shape(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
    level: int = 0,
) -> tuple[int, int]:
    """(depth, aliases) of a selection set, fragments expanded."""
    if selection_set is None or level > _MAX_WALK:
        return 0, 0
    depth = aliases = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            d, a = _shape(sel.selection_set, fragments, seen, level + 1)
            aliases += a + (1 if sel.alias else 0)
            # As strawberry's QueryDepthLimiter counts: leaves and introspection add nothing.
            if sel.selection_set and not sel.name.value.startswith("__"):
                depth = max(depth, 1 + d)
        else:
            if isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                if name in seen or name not in fragments:
                    continue
                sub, seen_next = fragments[name].selection_set, seen | {name}
            else:
                assert isinstance(sel, InlineFragmentNode)
                sub, seen_next = sel.selection_set, seen
            d, a = _shape(sub, fragments, seen_next, level + 1)
            depth, aliases = max(depth, d), aliases + a
    return depth, aliases


def operation_limits_rule(max_depth: int, max_aliases: int) -> type[ASTValidationRule]:
    class OperationLimits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = _fragments(self.context.document)
            depth, aliases = _shape(node.selection_set, fragments)
            # The root field is level 1; a depth of N means N nested selections.
            if depth > max_depth:
                self.report_error(
                    _error(
                        node,
                        DEPTH_CODE,
                        f"The query is {depth} levels deep; at most {max_depth} are allowed.",
                        limit="depth",
                        depth=depth,
                        maxDepth=max_depth,
                    )
                )
            if aliases > max_aliases:
                self.report_error(
                    _error(
                        node,
                        "ALIAS_LIMIT_EXCEEDED",
                        f"The query uses {aliases} aliases; at most {max_aliases} are allowed.",
                        limit="aliases",
                        aliases=aliases,
                        maxAliases=max_aliases,
                    )
                )

    return OperationLimits


class NoIntrospection(ValidationRule):
    """`__schema` and `__type` are refused (`__typename` stays: clients need it)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.name.value in ("__schema", "__type"):
            self.report_error(
                _error(
                    node,
                    "INTROSPECTION_DISABLED",
                    "Introspection is disabled on this server.",
                    limit="introspection",
                )
            )


class LruCache(OrderedDict[Any, Any]):
    """A bounded mapping that forgets the least recently used entry."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value

    def fetch(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


_validation_cache = LruCache(1024)
_parse_cache = LruCache(1024)


class CachedParser(SchemaExtension):
    """Parses each distinct query text once. A syntax error is left to strawberry's own
    parse step, which reports it as an ordinary GraphQL error (ParserCache would raise it)."""

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query and ctx.graphql_document is None:
            document = _parse_cache.fetch(ctx.query)
            if document is None:
                try:
                    document = _parse_cache.put(ctx.query, parse(ctx.query, **ctx.parse_options))
                except GraphQLError:
                    document = None
            ctx.graphql_document = document
        yield


class CachedValidation(SchemaExtension):
    """Adds our rules; caches validation by (query text, rules): a repeated query validates once."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...], hide_suggestions: bool) -> None:
        self.rules = rules
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.validation_rules = ctx.validation_rules + self.rules
        yield

    def on_validate(self) -> Iterator[None]:
        from strawberry.schema.schema import validate_document

        ctx = self.execution_context
        key = (ctx.query, ctx.validation_rules, id(ctx.schema))
        errors = _validation_cache.fetch(key) if ctx.query else None
        if errors is None:
            assert ctx.graphql_document is not None
            errors = validate_document(
                ctx.schema._schema, ctx.graphql_document, ctx.validation_rules
            )
            if self.hide_suggestions:
                for error in errors:
                    error.message = _SUGGESTION.sub("", error.message)
            if ctx.query:
                _validation_cache.put(key, errors)
        ctx.pre_execution_errors = list(errors)
        yield


# --- cost ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paged:
    """A field whose children are fetched `first` times."""

    variable: str | None
    default: int
    plan: Plan


@dataclass(frozen=True)
class Plan:
    fixed: int
    paged: tuple[Paged, ...]

    def cost(self, variables: dict[str, Any], cap: int) -> int:
        total = self.fixed
        for p in self.paged:
            value = variables.get(p.variable, p.default) if p.variable else p.default
            n = value if isinstance(value, int) and not isinstance(value, bool) else cap
            total += max(0, min(n, cap)) * p.plan.cost(variables, cap)
        return total


def compile_plan(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, cap: int
) -> Plan:
    fragments = _fragments(document)
    var_defaults = {
        v.variable.name.value: int(v.default_value.value)
        for v in operation.variable_definitions or ()
        if isinstance(v.default_value, IntValueNode)
    }
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[operation.operation.value]

    def walk(
        sel_set: SelectionSetNode | None, parent: Any, seen: frozenset[str], level: int
    ) -> Plan:
        fixed, paged = 0, list[Paged]()
        if sel_set is None or level > _MAX_WALK:
            return Plan(0, ())
        for sel in sel_set.selections:
            if isinstance(sel, FieldNode):
                if sel.name.value.startswith("__"):
                    continue
                field_def = (
                    parent.fields.get(sel.name.value)
                    if (is_object_type(parent) or is_interface_type(parent))
                    else None
                )
                child = get_named_type(field_def.type) if field_def else None
                sub = walk(sel.selection_set, child, seen, level + 1)
                fixed += 1
                first = next((a for a in sel.arguments or () if a.name.value == "first"), None)
                arg_def = field_def.args.get("first") if field_def else None
                if first is None and arg_def is None:
                    fixed += sub.fixed
                    paged.extend(sub.paged)
                    continue
                default = (
                    arg_def.default_value
                    if arg_def and isinstance(arg_def.default_value, int)
                    else cap
                )
                if first is not None and isinstance(first.value, IntValueNode):
                    paged.append(Paged(None, int(first.value.value), sub))
                elif first is not None and isinstance(first.value, VariableNode):
                    name = first.value.name.value
                    paged.append(Paged(name, var_defaults.get(name, default), sub))
                else:
                    paged.append(Paged(None, default, sub))
            else:
                if isinstance(sel, FragmentSpreadNode):
                    frag = fragments.get(sel.name.value)
                    if frag is None or sel.name.value in seen:
                        continue
                    sub_set, seen_next = frag.selection_set, seen | {sel.name.value}
                    cond: NamedTypeNode | None = frag.type_condition
                else:
                    assert isinstance(sel, InlineFragmentNode)
                    sub_set, cond, seen_next = sel.selection_set, sel.type_condition, seen
                target = schema.get_type(cond.name.value) if cond else parent
                sub = walk(sub_set, target, seen_next, level + 1)
                fixed += sub.fixed
                paged.extend(sub.paged)
        return Plan(fixed, tuple(paged))

    return walk(operation.selection_set, root, frozenset(), 0)


_plan_cache = LruCache(1024)


def find_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the one named, or the only one."""
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return ops[0] if len(ops) == 1 else None
    return next((o for o in ops if o.name and o.name.value == name), None)


class CostLimit(SchemaExtension):
    """Refuses an operation whose cost, with page sizes multiplied in, is over GRAPHQL_MAX_COST.

    Each field costs 1; a field with `first: N` (literal, variable or its default)
    multiplies the cost of what is selected under it by N (capped at MAX_PAGE_SIZE).
    """

    def __init__(self, max_cost: int, page_cap: int) -> None:
        self.max_cost = max_cost
        self.page_cap = page_cap

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None:
            key = (ctx.query, ctx.operation_name, id(ctx.schema))
            plan = _plan_cache.fetch(key) if ctx.query else None
            if plan is None:
                operation = find_operation(document, ctx.operation_name)
                if operation is not None:
                    plan = compile_plan(ctx.schema._schema, document, operation, self.page_cap)
                    if ctx.query:
                        _plan_cache.put(key, plan)
            if plan is not None:
                cost = plan.cost(ctx.variables or {}, self.page_cap)
                if cost > self.max_cost:
                    message = (
                        f"The query would cost {cost} (page sizes multiplied); "
                        f"at most {self.max_cost} is allowed. Ask for smaller pages."
                    )
                    ctx.result = GraphQLExecutionResult(
                        data=None,
                        errors=[
                            _error(
                                None,
                                "QUERY_TOO_COMPLEX",
                                message,
                                limit="cost",
                                cost=cost,
                                maxCost=self.max_cost,
                            )
                        ],
                    )
        yield
