"""The per-request GraphQL context: the service context plus dataloaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strawberry.types import Info as _Info

from gateway.services.context import ServiceContext

if TYPE_CHECKING:
    from schema.dataloaders import Loaders


@dataclass
class GraphQLContext(ServiceContext):
    request: Any = None
    response: Any = None
    # Websockets only: the connection_init payload, and the authenticated connection.
    connection_params: dict[str, Any] | None = None
    connection: Any = None  # gateway.realtime.connections.Connection
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def loaders(self) -> Loaders:
        # Created per request: cached rows never leak between callers.
        if self._loaders is None:
            from schema.dataloaders import Loaders

            self._loaders = Loaders(self)
        return self._loaders


Info = _Info[GraphQLContext, None]
