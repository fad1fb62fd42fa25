"""`santana serve` with two workers: each on its own socket, connections spread, clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from gateway.serving import reuse_port_supported

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="needs SO_REUSEPORT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _established(pid: int, port: int) -> int:
    return sum(
        1
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
    )


def test_two_workers_share_the_connections_and_stop_on_sigterm(
    sqlite_template: Path, tmp_path: Path
) -> None:
    db = tmp_path / "serve.db"
    shutil.copy(sqlite_template, db)
    port = _free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "ACCESS_LOG": "false",
        "OUTBOX_IN_PROCESS": "false",
    }
    santana = Path(sys.executable).parent / "santana"
    proc = subprocess.Popen(
        [str(santana), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline:
            workers = [
                c.pid
                for c in psutil.Process(proc.pid).children()
                if "resource_tracker" not in " ".join(c.cmdline())
            ]
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code
            except httpx.HTTPError:
                ready = 0
            if ready == 200 and len(workers) == 2 and all(_listening(pid, port) for pid in workers):
                break
            assert proc.poll() is None, "santana serve exited at start"
            time.sleep(0.2)
        else:
            raise AssertionError("the two workers did not come up")
        # 40 clients connect at once: the kernel spreads them over the workers' sockets
        # (a shared socket let the first worker to wake accept them all).
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        time.sleep(1.0)
        per_worker = [_established(pid, port) for pid in workers]
        assert sum(per_worker) == 40 and min(per_worker) > 0, per_worker
    finally:
        for s in sockets:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
    assert not any(psutil.pid_exists(pid) and _alive(pid) for pid in workers)


def _listening(pid: int, port: int) -> bool:
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        for c in psutil.Process(pid).net_connections(kind="tcp")
    )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
