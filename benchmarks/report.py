"""benchmarks/RESULTS.md: the command, the machine, the figures, the ratios, the profile."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime

from benchmarks.config import RESULTS, Load
from benchmarks.loadgen import Figures

COMMAND = "make bench   # = .venv/bin/python -m benchmarks.run"


@dataclass
class Run:
    load: Load
    cpus: int
    workers: int
    versions: dict[str, str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    setup: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    logins: dict[str, int] = field(default_factory=dict)
    statements: dict[str, int] = field(default_factory=dict)
    figures: list[Figures] = field(default_factory=list)
    profile: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _row(f: Figures) -> str:
    rss = f.extra.get("peak_rss_mb", [])
    rss_s = " / ".join(f"{r:.0f}" for r in rss) if isinstance(rss, list) else "?"
    stmts = f.extra.get("statements", "n/a")
    cpu = f.extra.get("cpu_ms_per_req", {})
    cpu_s = (
        f"{cpu.get('app', 0):.1f} / {cpu.get('db', 0):.1f}"
        if isinstance(cpu, dict) and cpu
        else "n/a"
    )
    return (
        f"| {f.name} | {f.connections} | {f.rps:,.0f} | {f.extra.get('served_rps', 0):,.0f} | {f.rps * 60:,.0f} | {f.p50_ms:.1f} | {f.p95_ms:.1f} | "
        f"{f.p99_ms:.1f} | {f.errors} ({f.non2xx} non-2xx, {f.gql_errors} GraphQL, {f.socket_errors} socket) | "
        f"{stmts} | {rss_s} | {cpu_s} | {f.extra.get('audit_rows_per_req', 'n/a')} | "
        f"{f.extra.get('load_1min', '?')} | {f.extra.get('split', '?')} |"
    )


def ratios(ours: Figures, peer: Figures) -> tuple[float, float]:
    return ours.rps / peer.rps, ours.p99_ms / peer.p99_ms


def render(run: Run, profile_text: str) -> str:
    loads = lambda t: ", ".join(f"{x:.2f}" for x in t)  # noqa: E731
    by = {f.name: f for f in run.figures}
    out = [
        "# Benchmark results",
        "",
        f"Produced by `{COMMAND}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. A baseline: the machine is shared",
        "with other engineers' test runs, so absolute figures move with its load; the ratios to PostGraphile",
        "(same run, same database, same cores) are the figures to compare.",
        "",
        "## Environment",
        "",
        f"- CPUs: {run.cpus} ({platform.machine()}, {platform.processor() or 'n/a'}); gateway workers: {run.workers} "
        f"(uvicorn via `santana serve`), PostGraphile workers: {run.workers} (node:cluster)",
        f"- Load average before: {loads(run.load_before)}; after: {loads(run.load_after)}",
        "- " + "; ".join(f"{k} {v}" for k, v in run.versions.items()),
        f"- wrk: {run.load.threads} thread, {run.load.duration_s} s per scenario after a {run.load.warmup_s} s "
        f"warm-up, timeout {run.load.timeout_s} s; loopback only; wrk runs on the same 2 cores it measures",
        "- Gateway: APP_ENV=production, fresh 86-char JWT_SECRET and generated DATA_ENCRYPTION_KEYS, GraphiQL off, "
        "connects as `santana_app` (no superuser, no BYPASSRLS: RLS in force), pool 10 per worker, access log on "
        "(to a file); rate limiter on with its ceilings lifted (RATE_LIMIT_GENERAL=100000000/hour, "
        "RATE_LIMIT_AUTH=100000/minute) so it is measured, not hit; access tokens 1 h",
        "- PostGraphile: v5 amber preset, same role and RLS; the HS256 token's clinic becomes `app.clinic_id`",
        "- Data: "
        + ", ".join(f"{v:,} {k}" for k, v in run.rows.items())
        + " (setup: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in run.setup.items())
        + ")",
        "- Logged in through `login` (admins with a TOTP code): "
        + ", ".join(f"{v} {k}" for k, v in run.logins.items()),
        "",
        "## Figures",
        "",
        "| scenario | conns | req/s | served/s | req/min | p50 ms | p95 ms | p99 ms | errors | SQL stmts/req | peak RSS/worker MB "
        "| CPU ms/req app / db | audit rows/req | load avg | CPU % by worker |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(f) for f in run.figures),
        "",
        "SQL statements per request were counted in-process with `gateway.db.engine.count_statements` "
        "(one request of each kind, through the full ASGI stack), including the transaction's tenant "
        "`set_config`: "
        + ", ".join(f"{k} {v}" for k, v in run.statements.items())
        + ". Mixed shows the "
        "weighted mean. Audit rows are the read-audit rows the background writer added per request "
        "(not in the statement count). CPU per request sums the workers' (app) and the bench "
        "database's PostgreSQL backends' (db) user+system time over the run, divided by the requests the "
        "server finished (its access log; wrk stops counting at its deadline and at its 10 s timeout). "
        "served/s: requests the server finished per second from the start of the run until it was "
        "idle again (PostGraphile: wrk's count). Load avg is the machine's 1-minute load average at the end of the scenario; CPU % by worker shows "
        "how the work spread over the server's workers. Latency under a "
        "closed loop of N connections is about N / throughput: it falls as throughput rises.",
    ]
    if "dashboard" in by and "postgraphile dashboard" in by:
        t, p = ratios(by["dashboard"], by["postgraphile dashboard"])
        out += [
            "",
            "## Dashboard against PostGraphile (same run)",
            "",
            f"- Throughput: ours / PostGraphile's = **{t:.2f}** (target >= 1.00)",
            f"- p99: ours / PostGraphile's = **{p:.2f}** (target <= 1.00)",
        ]
        if "dashboard (cache warm)" in by:
            c, cp = ratios(by["dashboard (cache warm)"], by["postgraphile dashboard"])
            out += [
                f"- With the response cache warm (RESPONSE_CACHE=true, same dashboard load): "
                f"throughput ratio **{c:.2f}** (target >= 5.00), p99 ratio {cp:.2f}",
            ]
    if run.notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in run.notes)]
    out += ["", profile_text.rstrip(), ""]
    return "\n".join(out)


def write(run: Run, profile_text: str) -> str:
    text = render(run, profile_text)
    RESULTS.write_text(text)
    return text


def environment_versions() -> dict[str, str]:
    from importlib.metadata import version

    v = {"Python": platform.python_version()}
    for pkg in ("strawberry-graphql", "graphql-core", "SQLAlchemy", "asyncpg", "uvicorn"):
        v[pkg] = version(pkg)
    v["kernel"] = os.uname().release
    return v
