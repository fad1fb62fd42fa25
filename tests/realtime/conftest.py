"""Fixtures: the gateway served on a local port, with its own Redis channel namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.app import create_app
from gateway.auth.principal import Principal
from gateway.auth.tokens import issue_access_token
from gateway.db.engine import Database
from gateway.settings import Settings, load_settings
from tests.realtime.wsclient import serve

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def run_namespace() -> str:
    """A Redis key and channel prefix of this test alone (parallel runs never mix)."""
    return f"santana-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def realtime_settings(database_url: str) -> Settings:
    return load_settings(
        app_env="test",
        database_url=database_url,
        subscription_connections_per_user=2,
        subscriptions_per_connection=2,
        rate_limit_namespace=run_namespace(),
    )


@pytest.fixture
async def ws_url(realtime_settings: Settings, database: Database) -> AsyncIterator[str]:
    app = create_app(realtime_settings, database)
    async with serve(app) as url:
        yield url


def token(settings: Settings, user: Any, ttl_seconds: int = 300) -> str:
    principal = Principal(user_id=user.id, role=user.role, clinic_id=user.clinic_id)
    return issue_access_token(principal, settings.jwt_secret, ttl_seconds)[0]
