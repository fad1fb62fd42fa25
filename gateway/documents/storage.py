"""Which storage plugin keeps a clinic's documents, and calls to it.

A clinic that enabled a `storage` plugin uses it; every other clinic uses the
deployment's DOCUMENT_STORAGE plugin with the platform defaults (the local store
gets DOCUMENT_LOCAL_DIR as its `directory`). A document is always read from the
plugin that stored it, so switching stores never strands older documents.
Calls go through dispatch.invoke: timeout, typed errors, circuit breaker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.integrations.dispatch import CallInfo, Target, invoke
from gateway.integrations.errors import NotConfigured
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.types import Kind, StoredObject


@dataclass(frozen=True)
class Store:
    hub: IntegrationHub
    target: Target

    @property
    def plugin(self) -> str:
        return self.target.plugin.name

    async def put(self, key: str, path: str) -> StoredObject:
        result: StoredObject = await invoke(
            self.hub, self.target, "put_object", {"key": key, "path": path}
        )
        return result

    async def open(self, key: str) -> AsyncIterator[bytes]:
        stream: AsyncIterator[bytes] = await invoke(
            self.hub, self.target, "open_object", {"key": key}
        )
        return stream

    async def delete(self, key: str, who: CallInfo = CallInfo()) -> None:
        await invoke(self.hub, self.target, "delete_object", {"key": key}, who)


async def store_for_upload(hub: IntegrationHub, db: AsyncSession, clinic_id: uuid.UUID) -> Store:
    """The clinic's own enabled storage plugin, else the deployment's."""
    row = await hub.enabled_row(db, clinic_id, Kind.STORAGE.value)
    if row is not None:
        return Store(hub, Target.from_row(hub, row))
    return deployment_store(hub, clinic_id, hub.settings.document_storage)


async def store_named(
    hub: IntegrationHub, db: AsyncSession, clinic_id: uuid.UUID, plugin: str
) -> Store:
    """The plugin that stored a document, with the clinic's config if it has one."""
    row = await hub.row(db, clinic_id, plugin)
    if row is not None:
        return Store(hub, Target.from_row(hub, row))
    return deployment_store(hub, clinic_id, plugin)


def deployment_store(hub: IntegrationHub, clinic_id: uuid.UUID, name: str) -> Store:
    plugin = hub.manager.get(name)
    if plugin is None or plugin.kind is not Kind.STORAGE:
        raise NotConfigured(
            f"Document storage {name!r} is not an installed storage plugin.", plugin=name
        )
    config: dict[str, Any] = {}
    if "directory" in plugin.declaration.config_model.model_fields:
        config["directory"] = hub.settings.document_local_dir
    return Store(hub, Target(clinic_id=clinic_id, plugin=plugin, config=config, secrets={}))
