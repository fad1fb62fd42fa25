"""Runs wrk against one server and turns its summary into figures; reads CPU time from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.config import ROOT, Load

LUA = ROOT / "wrk" / "graphql.lua"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    name: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    gql_errors: int
    socket_errors: int
    sample_error: str
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non2xx + self.gql_errors + self.socket_errors


def wrk(
    wrk_bin: str,
    url: str,
    data_file: Path,
    connections: int,
    duration_s: int,
    load: Load,
    name: str,
) -> Figures:
    argv = [
        wrk_bin,
        f"-t{load.threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={load.timeout_s}s",
        "-s",
        str(LUA),
        url,
        "--",
        str(data_file),
        str(load.threads),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk gave no summary (exit {out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}"
        )
    d = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = d["duration_us"] / 1e6
    return Figures(
        name=name,
        connections=connections,
        duration_s=round(seconds, 1),
        requests=d["requests"],
        rps=d["requests"] / seconds,
        p50_ms=d["p50_us"] / 1000,
        p95_ms=d["p95_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        non2xx=d["non2xx"],
        gql_errors=d["gql_errors"],
        socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
        sample_error=d["sample"],
    )


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        except (OSError, IndexError):
            pass
    return found


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_by_pid(pids).values())


def postgres_backends(database: str) -> list[int]:
    """Backends serving `database` (other users' tests share the server: leave theirs out)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres: ") and f" {database} " in cmd:
            pids.append(int(entry.name))
    return pids


def wait_idle(pids: list[int], busy_share: float = 0.1, timeout: float = 120) -> float:
    """Wait until the workers use under `busy_share` of a core each; returns the seconds waited."""
    t0 = time.monotonic()
    before = cpu_seconds(pids)
    while time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        now = cpu_seconds(pids)
        if (now - before) / 0.5 / max(len(pids), 1) < busy_share:
            break
        before = now
    return time.monotonic() - t0


class CpuMeter:
    """CPU seconds spent by the app workers and by PostgreSQL while a scenario runs."""

    def __init__(self, app_pids: list[int], database: str) -> None:
        self.app_pids, self.database = app_pids, database
        self.app0 = cpu_by_pid(app_pids)
        self.db0 = cpu_by_pid(postgres_backends(database))
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, object]:
        # Backends opened meanwhile count in full; those closed meanwhile are lost (a lower bound).
        db_now = cpu_by_pid(postgres_backends(self.database))
        db = sum(now - self.db0.get(pid, 0.0) for pid, now in db_now.items())
        app = {pid: now - self.app0.get(pid, 0.0) for pid, now in cpu_by_pid(self.app_pids).items()}
        total = sum(app.values())
        return {
            "app_cpu_s": total,
            # How the work spread over the workers: one busy worker means an idle core.
            "split": [round(100 * v / total) if total else 0 for v in app.values()],
            "db_cpu_s": db,
            "wall_s": time.monotonic() - self.t0,
        }
