"""Compiled reads: the hot read shapes answered without graphql-core's per-field machinery.

A query whose every selected field is in `fields.py`'s tables is compiled once per
(query text, operation) into a plan (`plan.py`) and run level by level (`run.py`): each
level's rows are fetched for all parents in one statement through the same services,
permission filters and loaders the resolvers use, then shaped straight into the response's
dicts with the schema's own scalar serializers. Anything else (mutations, directives, a
field outside the tables, an error to report) runs through the ordinary executor, and the
test suite checks that both give the same answer for every compiled shape.
"""

from schema.compiled.extension import CompiledReads

__all__ = ["CompiledReads"]
