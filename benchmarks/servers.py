"""Start, probe and stop the two servers; read their workers' memory from /proc."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.config import (
    APP_ROLE,
    GATEWAY_PORT,
    HOST,
    POSTGRAPHILE_PORT,
    PROJECT,
    ROOT,
    WORK,
    pg_url,
)
from gateway.crypto import DataCipher

PG_DIR = ROOT / "postgraphile"


@dataclass
class Secrets:
    """Fresh production secrets for one run (the dev defaults are refused in production)."""

    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(64))  # 86 characters
    encryption_key: str = field(default_factory=DataCipher.generate_key)


def gateway_env(s: Secrets, workers: int, *, response_cache: bool = False) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RATE_LIMIT", "GRAPHQL_", "DATABASE_"))
    }
    env.update(
        APP_ENV="production",
        HOST=HOST,
        PORT=str(GATEWAY_PORT),
        WORKERS=str(workers),
        DATABASE_URL=pg_url(APP_ROLE, driver="postgresql+asyncpg"),
        MIGRATION_DATABASE_URL=pg_url(driver="postgresql+asyncpg"),
        DATABASE_APP_ROLE=APP_ROLE,
        JWT_SECRET=s.jwt_secret,
        DATA_ENCRYPTION_KEYS=s.encryption_key,
        GRAPHIQL="false",
        # Tokens must outlive the whole run (the default is 15 minutes).
        JWT_ACCESS_TTL_SECONDS="3600",
        # The limiter still runs on every request; its ceilings are lifted, or the
        # 1000/hour per user and 10/minute logins per IP would reject the load itself.
        RATE_LIMIT_GENERAL="100000000/hour",
        RATE_LIMIT_AUTH="100000/minute",
        # Off for every scenario but "dashboard (cache warm)", which measures it.
        RESPONSE_CACHE="true" if response_cache else "false",
    )
    return env


def _wait_http(
    url: str, body: dict[str, object], proc: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.post(url, json=body, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not answer within {timeout}s; see {log}")


class Server:
    """A server process group started by the benchmark (and only ever stopped by it)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, url: str
    ) -> None:
        self.name, self.url = name, url
        self.log = WORK / f"{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 90) -> None:
        _wait_http(self.url, {"query": "{ __typename }"}, self.proc, self.log, timeout)

    def workers(self) -> list[int]:
        """Worker pids: the children that run the app (not multiprocessing's resource tracker)."""
        found = []
        for pid in _children(self.proc.pid):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"resource_tracker" not in cmd:
                found.append(pid)
        return found or [self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this benchmark started
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        kids = []
        for task in tasks:
            kids += [int(c) for c in (task / "children").read_text().split()]
        return kids
    except OSError:
        return []


def reset_peak_rss(pids: list[int]) -> None:
    """Writing 5 to clear_refs resets VmHWM, so each scenario reports its own peak."""
    for pid in pids:
        with contextlib.suppress(OSError):  # the worker may have exited
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(pids: list[int]) -> list[float]:
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peaks


def start_gateway(s: Secrets, workers: int, *, response_cache: bool = False) -> Server:
    santana = PROJECT / ".venv" / "bin" / "santana"
    return Server(
        "gateway",
        [str(santana), "serve"],
        gateway_env(s, workers, response_cache=response_cache),
        PROJECT,
        f"http://{HOST}:{GATEWAY_PORT}/graphql",
    )


def install_postgraphile() -> None:
    if not (PG_DIR / "node_modules" / "postgraphile").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PG_DIR, check=True
        )


def start_postgraphile(s: Secrets, workers: int) -> Server:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=pg_url(APP_ROLE),
        JWT_SECRET=s.jwt_secret,
        HOST=HOST,
        PORT=str(POSTGRAPHILE_PORT),
        WORKERS=str(workers),
        POOL_SIZE="10",
        NODE_ENV="production",
        GRAPHILE_ENV="production",
    )
    node = shutil.which("node") or "node"
    argv = [node, "--import", "./shim.mjs", "server.mjs"]
    return Server("postgraphile", argv, env, PG_DIR, f"http://{HOST}:{POSTGRAPHILE_PORT}/graphql")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("wrk") or "wrk"
