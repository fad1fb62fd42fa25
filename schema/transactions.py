"""Mutations commit on success and roll back on any error: a failed mutation changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from strawberry.extensions import FieldExtension

from gateway.errors import Conflict


class Transactional(FieldExtension):
    def resolve(self, next_: Callable[..., Any], source: Any, info: Any, **kwargs: Any) -> Any:
        raise RuntimeError("mutations are async")

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Any, **kwargs: Any
    ) -> Any:
        ctx = info.context
        try:
            result = await next_(source, info, **kwargs)
            await ctx.db.commit()
            # The commit released the connection; the result's nested fields need one.
            await ctx.hold_connection()
        except IntegrityError as exc:
            await ctx.db.rollback()
            # A constraint the service did not pre-check (e.g. a concurrent insert).
            raise Conflict("The change conflicts with existing data; reload and retry.") from exc
        except BaseException:
            await ctx.db.rollback()
            raise
        return result
