"""Compile a query operation into a plan, or say it cannot be compiled (None).

The plan is the operation's selection, resolved against the schema once: for every
response key, which table entry (schema.compiled.fields) produces it, the schema's own
serializer for leaves, and whether null is allowed. Fragments are flattened; directives,
a response key asked twice in different ways, and any field outside the tables make the
operation not compilable, so it runs through the ordinary executor.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationType,
    SelectionSetNode,
    VariableDefinitionNode,
    is_leaf_type,
)

from gateway.security.graphql_limits import find_operation
from schema.compiled.fields import ROOTS, TYPES, Fetched, Held, Leaf, Root


class NotCompilable(Exception):
    """The operation uses something the plans do not cover."""


class FieldPlan:
    __slots__ = (
        "args_needed",
        "definition",
        "entry",
        "is_list",
        "key",
        "node",
        "nullable",
        "serialize",
        "sub",
    )

    def __init__(
        self,
        key: str,
        entry: Leaf | Held | Fetched | Root | str,
        definition: GraphQLField | None,
        node: FieldNode,
        nullable: bool,
        is_list: bool,
        serialize: Any = None,
        sub: ObjectPlan | None = None,
    ) -> None:
        self.key = key
        self.entry = entry  # a str: `__typename`, answered with that type name
        self.definition = definition
        self.node = node
        self.nullable = nullable
        self.is_list = is_list
        self.serialize = serialize
        self.sub = sub
        self.args_needed = bool(definition and definition.args)


class ObjectPlan:
    __slots__ = ("columns", "fields", "names", "related", "type_name")

    def __init__(self, type_name: str, fields: list[FieldPlan]) -> None:
        self.type_name = type_name
        self.fields = fields
        self.names = {f.node.name.value for f in fields}
        # Fields whose values are objects: completed for the whole level before shaping.
        self.related = [f for f in fields if f.sub is not None]
        # The row columns this level reads: a fetch may select only these (and the keys).
        self.columns = frozenset(c for f in fields for c in getattr(f.entry, "columns", ()))

    def selects(self, name: str) -> bool:
        return name in self.names

    def sub_columns(self, name: str) -> frozenset[str]:
        """The columns read below the field `name` (under every alias it is asked with)."""
        return frozenset(
            c
            for f in self.related
            if f.node.name.value == name and f.sub is not None
            for c in f.sub.columns
        )


class OperationPlan(NamedTuple):
    root: ObjectPlan
    # Kept with the plan: each request coerces its variables without finding the operation.
    variable_definitions: tuple[VariableDefinitionNode, ...]


def compile_operation(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> OperationPlan | None:
    operation = find_operation(document, operation_name)
    if operation is None or operation.operation != OperationType.QUERY or operation.directives:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    assert schema.query_type is not None
    try:
        root = _object(schema, schema.query_type, operation.selection_set, fragments, root=True)
    except NotCompilable:
        return None
    return OperationPlan(root, tuple(operation.variable_definitions or ()))


def _object(
    schema: GraphQLSchema,
    parent: GraphQLObjectType,
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    root: bool = False,
) -> ObjectPlan:
    if selection_set is None:
        raise NotCompilable("an object without a selection")
    table: dict[str, Any] = ROOTS if root else TYPES.get(parent.name, {})
    plans: list[FieldPlan] = []
    for key, node in _collect(selection_set, parent.name, fragments, set()).items():
        name = node.name.value
        if name == "__typename":
            plans.append(FieldPlan(key, parent.name, None, node, False, False))
            continue
        entry = table.get(name)
        definition = parent.fields.get(name)
        if entry is None or definition is None:
            raise NotCompilable(f"{parent.name}.{name}")
        gql_type, nullable, is_list = definition.type, True, False
        if isinstance(gql_type, GraphQLNonNull):
            gql_type, nullable = gql_type.of_type, False
        if isinstance(gql_type, GraphQLList):
            is_list, gql_type = True, gql_type.of_type
            if not isinstance(gql_type, GraphQLNonNull):
                raise NotCompilable("a list of nullable items")
            gql_type = gql_type.of_type
        if isinstance(entry, Leaf):
            if not is_leaf_type(gql_type) or is_list or node.selection_set is not None:
                raise NotCompilable(f"{parent.name}.{name} as a leaf")
            plans.append(
                FieldPlan(key, entry, definition, node, nullable, False, gql_type.serialize)  # type: ignore[union-attr]
            )
            continue
        if not isinstance(gql_type, GraphQLObjectType):
            raise NotCompilable(f"{parent.name}.{name}: not an object type")
        sub = _object(schema, gql_type, node.selection_set, fragments)
        plans.append(FieldPlan(key, entry, definition, node, nullable, is_list, sub=sub))
    return ObjectPlan(parent.name, plans)


def _collect(
    selection_set: SelectionSetNode,
    type_name: str,
    fragments: dict[str, FragmentDefinitionNode],
    spread: set[str],
) -> dict[str, FieldNode]:
    """Response key -> field node, in the order graphql-core would answer them."""
    fields: dict[str, FieldNode] = {}
    condition: NamedTypeNode | None
    for sel in selection_set.selections:
        if sel.directives:
            raise NotCompilable("a directive")
        if isinstance(sel, FieldNode):
            key = (sel.alias or sel.name).value
            if key in fields:
                if not _same_leaf(fields[key], sel):
                    raise NotCompilable(f"{key} asked twice")  # merging is left to graphql-core
                continue
            fields[key] = sel
            continue
        if isinstance(sel, FragmentSpreadNode):
            fragment = fragments.get(sel.name.value)
            if fragment is None or sel.name.value in spread:
                raise NotCompilable("an unknown or repeated fragment")
            spread = spread | {sel.name.value}
            condition, inner = fragment.type_condition, fragment.selection_set
        else:
            assert isinstance(sel, InlineFragmentNode)
            condition, inner = sel.type_condition, sel.selection_set
        if condition is not None and condition.name.value != type_name:
            raise NotCompilable("a fragment on another type")
        for key, node in _collect(inner, type_name, fragments, spread).items():
            if key in fields and not _same_leaf(fields[key], node):
                raise NotCompilable(f"{key} asked twice")
            fields.setdefault(key, node)
    return fields


def _same_leaf(a: FieldNode, b: FieldNode) -> bool:
    return (
        a.name.value == b.name.value
        and not a.arguments
        and not b.arguments
        and a.selection_set is None
        and b.selection_set is None
    )
