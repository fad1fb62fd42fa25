"""Documents in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, …).

boto3 is synchronous, so every call runs in a worker thread. Objects arrive
already encrypted; uploads stream from the gateway's spool file (boto3 switches
to a multipart upload above 8 MB) and downloads stream the response body.
A deployment sets its bucket with DOCUMENT_S3_* variables (platform defaults);
a clinic may enable the plugin with its own bucket and credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field, SecretStr

from gateway.integrations import (
    Kind,
    NotConfigured,
    PluginContext,
    PluginDeclaration,
    ProviderRejected,
    ProviderUnavailable,
    hookimpl,
)
from gateway.integrations.types import StoredObject

READ_BLOCK = 256 * 1024
MISSING = {"NoSuchKey", "404", "NotFound"}


class S3StoreConfig(BaseModel):
    bucket: str = Field(min_length=3, max_length=63, description="Bucket the objects go to")
    prefix: str = Field("", max_length=200, description="Prepended to every object key")
    region: str = Field("us-east-1", description="The bucket's region")
    endpoint_url: str | None = Field(
        None, description="For S3-compatible services (MinIO, Ceph); empty for AWS"
    )
    access_key_id: str | None = Field(None, description="Empty: boto3's default credentials")
    secret_access_key: SecretStr | None = None


declaration = PluginDeclaration(
    name="store_s3",
    kind=Kind.STORAGE,
    label="S3-compatible object storage",
    description="Keeps encrypted document objects in an S3 (or S3-compatible) bucket.",
    version="1.0.0",
    config_model=S3StoreConfig,
    env_prefix="DOCUMENT_S3_",
)

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _client(config: S3StoreConfig) -> Any:
    """One client per distinct configuration (building one costs tens of milliseconds)."""
    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else ""
    fingerprint = hashlib.sha256(
        "\0".join(
            [config.region, config.endpoint_url or "", config.access_key_id or "", secret]
        ).encode()
    ).hexdigest()
    with _clients_lock:
        client = _clients.get(fingerprint)
        if client is None:
            # Sessions are not thread-safe; clients are. One session per client.
            client = boto3.session.Session().client(
                "s3",
                region_name=config.region,
                endpoint_url=config.endpoint_url or None,
                aws_access_key_id=config.access_key_id or None,
                aws_secret_access_key=secret or None,
                config=Config(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"} if config.endpoint_url else None,
                ),
            )
            _clients[fingerprint] = client
    return client


def _config(ctx: PluginContext) -> S3StoreConfig:
    config: S3StoreConfig = ctx.config
    return config


def _name(config: S3StoreConfig, key: str) -> str:
    return f"{config.prefix}{key}"


def _error(exc: Exception, action: str) -> Exception:
    """boto3's errors as the contract's: a refusal is not an outage."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in MISSING:
            return ProviderRejected(f"S3 {action}: the object does not exist.")
        if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket"}:
            return NotConfigured(f"S3 {action} refused ({code}); check bucket and credentials.")
        if 400 <= status < 500:
            return ProviderRejected(f"S3 {action} refused ({code}).")
        return ProviderUnavailable(f"S3 {action} failed ({code or status}).")
    return ProviderUnavailable(f"S3 {action} failed ({type(exc).__name__}).")


async def _call(action: str, function: Any, /, *args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise _error(exc, action) from None
    except S3UploadFailedError as exc:  # the transfer manager wraps the S3 error
        cause = exc.__cause__ or exc.__context__
        raise _error(cause if isinstance(cause, Exception) else exc, action) from None


@hookimpl
async def validate_config(ctx: PluginContext) -> None:
    config = _config(ctx)
    await _call("head_bucket", _client(config).head_bucket, Bucket=config.bucket)


@hookimpl
async def health_check(ctx: PluginContext) -> str:
    config = _config(ctx)
    await _call("head_bucket", _client(config).head_bucket, Bucket=config.bucket)
    return f"bucket {config.bucket} reachable"


@hookimpl
async def put_object(ctx: PluginContext, key: str, path: str) -> StoredObject:
    config = _config(ctx)
    client = _client(config)
    name = _name(config, key)
    await _call("upload", client.upload_file, path, config.bucket, name)
    head = await _call("head_object", client.head_object, Bucket=config.bucket, Key=name)
    return StoredObject(key=key, size=int(head["ContentLength"]))


async def _body(response: dict[str, Any]) -> AsyncIterator[bytes]:
    body = response["Body"]
    try:
        while block := await _call("read", body.read, READ_BLOCK):
            yield block
    finally:
        body.close()


@hookimpl
async def open_object(ctx: PluginContext, key: str) -> AsyncIterator[bytes]:
    config = _config(ctx)
    response = await _call(
        "get_object", _client(config).get_object, Bucket=config.bucket, Key=_name(config, key)
    )
    return _body(response)


@hookimpl
async def delete_object(ctx: PluginContext, key: str) -> None:
    config = _config(ctx)
    # S3 answers 204 for a key that does not exist: deleting twice is fine.
    await _call(
        "delete_object", _client(config).delete_object, Bucket=config.bucket, Key=_name(config, key)
    )
