"""Figures about this process and its host: DB pool use, memory, the TLS certificate."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from cryptography import x509

from gateway.db.engine import Database

STARTED_AT = time.time()
_CGROUP = Path("/sys/fs/cgroup")


def pool_usage(database: Database) -> tuple[int, int]:
    """(connections checked out, connections the pool may open)."""
    pool = database.engine.pool
    checked_out = getattr(pool, "checkedout", None)
    size = getattr(pool, "size", None)
    if not callable(checked_out) or not callable(size):
        return 0, 0  # pools without accounting (NullPool, StaticPool)
    overflow = getattr(pool, "_max_overflow", 0)
    return int(checked_out()), int(size()) + max(int(overflow), 0)


def pool_ratio(database: Database) -> float:
    in_use, size = pool_usage(database)
    return in_use / size if size else 0.0


def memory_usage_ratio() -> float:
    """Share of memory in use: the container's limit when one is set, else the host's."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            return int((_CGROUP / "memory.current").read_text()) / int(limit)
    except (OSError, ValueError):
        pass
    return psutil.virtual_memory().percent / 100


def process_memory_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def uptime_seconds() -> float:
    return time.time() - STARTED_AT


def tls_days_left(cert_path: str | None) -> float | None:
    """Days until the PEM certificate at `cert_path` expires (None: not configured)."""
    if not cert_path:
        return None
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return (cert.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400
