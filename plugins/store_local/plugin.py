"""Documents on the local filesystem: the default store of a single-machine deployment.

Objects arrive already encrypted. Each is written next to its final name and
renamed into place, so a crash never leaves a half-written object under a real
key. Layout: <directory>/<object key>, keys being `<clinic id>/<xx>/<random>`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, Field

from gateway.integrations import (
    Kind,
    NotConfigured,
    PluginContext,
    PluginDeclaration,
    ProviderRejected,
    hookimpl,
)
from gateway.integrations.types import StoredObject

READ_BLOCK = 256 * 1024
_KEY = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+)*$")


class LocalStoreConfig(BaseModel):
    directory: str = Field(
        "./var/documents", description="Where encrypted objects are kept (DOCUMENT_LOCAL_DIR)"
    )


declaration = PluginDeclaration(
    name="store_local",
    kind=Kind.STORAGE,
    label="Local filesystem",
    description="Keeps encrypted document objects in a directory on this machine.",
    version="1.0.0",
    config_model=LocalStoreConfig,
)


def _root(ctx: PluginContext) -> Path:
    config: LocalStoreConfig = ctx.config
    return Path(config.directory)


def _path(ctx: PluginContext, key: str) -> Path:
    # Keys come from the gateway, but a path must never leave the store's directory.
    if not _KEY.match(key):
        raise ProviderRejected("Object keys may hold only a-z, 0-9, '-' and '/'.")
    return _root(ctx) / key


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    try:
        await asyncio.to_thread(_root(ctx).mkdir, parents=True, exist_ok=True)
    except OSError:
        raise NotConfigured("The document directory cannot be created.") from None


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    root = _root(ctx)
    if not await asyncio.to_thread(os.access, root if root.exists() else root.parent, os.W_OK):
        raise NotConfigured("The document directory is not writable.")
    return "local filesystem"


def _put(source: str, target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        shutil.copyfile(source, partial)  # streams; never holds the file in memory
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size


@hookimpl
async def put_object(ctx: PluginContext, key: str, path: str) -> StoredObject:
    size = await asyncio.to_thread(_put, path, _path(ctx, key))
    return StoredObject(key=key, size=size)


async def _read(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while block := await asyncio.to_thread(handle.read, READ_BLOCK):
            yield block
    finally:
        handle.close()


@hookimpl
async def open_object(ctx: PluginContext, key: str) -> AsyncIterator[bytes]:
    path = _path(ctx, key)
    if not await asyncio.to_thread(path.is_file):
        raise ProviderRejected("The stored object does not exist.")
    return _read(path)


@hookimpl
async def delete_object(ctx: PluginContext, key: str) -> None:
    await asyncio.to_thread(_path(ctx, key).unlink, missing_ok=True)
