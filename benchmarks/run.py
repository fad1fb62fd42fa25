"""`make bench`: data set, both servers, every scenario, the profile, and benchmarks/RESULTS.md.

Steps: wrk (Debian) and PostGraphile (npm ci) if missing; a fresh `santana_bench`
database migrated to head and filled by COPY; the gateway served the production
way and PostGraphile beside it; logins; statement counts in-process; then wrk
per scenario (bounded in time, loopback only); py-spy on a worker under the
dashboard load; RESULTS.md. Every process it starts, it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from benchmarks import loadgen, profile, report, servers
from benchmarks.config import FULL, PASSWORD, PG_DATABASE, RESULTS, WORK, Load, pg_url
from benchmarks.counts import count_all
from benchmarks.database import build
from benchmarks.scenarios import MIX, Requests, build_requests, login_all, pick_accounts, write_lua
from gateway.crypto import DataCipher

HAND_WRITTEN = "## Where the time goes"
MIXED_TARGET_PER_MIN = 25_000  # kept across runs: the analysis is written by a person


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def audit_rows() -> int:
    conn = await asyncpg.connect(pg_url())
    try:
        return int(await conn.fetchval("SELECT count(*) FROM audit_events"))
    finally:
        await conn.close()


def scenario(
    name: str,
    server: servers.Server,
    kinds: list[tuple[str, float]],
    connections: int,
    wrk_bin: str,
    req: Requests,
    load: Load,
    statements: float | str,
    profile_out: str | None = None,
    think_ms: int = 0,
    cancel_part: tuple[int, int] = (0, 1),
) -> loadgen.Figures:
    data_file = WORK / f"{name.replace(' ', '_')}.lua"
    write_lua(data_file, req, kinds, think_ms=think_ms, cancel_part=cancel_part)
    # The warm-up only reads: its writes would use up the targets the measured run books and cancels.
    warm_file = WORK / f"{name.replace(' ', '_')}.warmup.lua"
    write_lua(warm_file, req, [(k, w) for k, w in kinds if k in req.reads])
    pids = server.workers()
    log(f"{name}: warm-up {load.warmup_s} s")
    loadgen.wrk(wrk_bin, server.url, warm_file, connections, load.warmup_s, load, name)
    # Requests wrk gave up on still run server-side: start measuring once they are done.
    waited = loadgen.wait_idle(pids)
    if waited > 5:
        log(f"{name}: server took {waited:.0f} s to drain the warm-up")
    time.sleep(1.5)  # and the read-audit writer has flushed the warm-up's reads
    servers.reset_peak_rss(pids)
    rows0 = asyncio.run(audit_rows())
    log_offset = server.log.stat().st_size
    meter = loadgen.CpuMeter(pids, PG_DATABASE)
    # Every worker is sampled: connections need not spread evenly over them.
    spies = (
        [
            profile.record(pid, load.duration_s - 2, WORK / f"{profile_out}.{i}")
            for i, pid in enumerate(pids)
        ]
        if profile_out
        else []
    )
    log(f"{name}: {load.duration_s} s at {connections} connections")
    figures = loadgen.wrk(wrk_bin, server.url, data_file, connections, load.duration_s, load, name)
    loadgen.wait_idle(pids)  # requests wrk abandoned at its deadline still cost the server
    cpu = meter.stop()
    for spy in spies:
        _, err = spy.communicate(timeout=60)
        if spy.returncode:
            log(f"py-spy failed: {err.decode()[-500:]}")
    figures.extra["peak_rss_mb"] = servers.peak_rss_mb(pids)
    figures.extra["statements"] = statements
    # Per request the server finished (its access log), not per response wrk counted in time.
    served = _served(server, log_offset) if server.name == "gateway" else figures.requests
    figures.extra["served"] = served
    figures.extra["served_rps"] = served / cpu["wall_s"]  # type: ignore[operator]
    figures.extra["load_1min"] = round(os.getloadavg()[0], 1)
    n = max(served, 1)
    figures.extra["cpu_ms_per_req"] = {
        "app": 1000 * cpu["app_cpu_s"] / n,  # type: ignore[operator]
        "db": 1000 * cpu["db_cpu_s"] / n,  # type: ignore[operator]
    }
    figures.extra["split"] = "/".join(str(x) for x in cpu["split"])  # type: ignore[attr-defined]
    if server.name == "gateway":
        time.sleep(2.5)  # the read-audit writer flushes every second
        figures.extra["audit_rows_per_req"] = round((asyncio.run(audit_rows()) - rows0) / n, 1)
    log(
        f"{name}: {figures.rps:,.0f} req/s, p99 {figures.p99_ms:.1f} ms, errors {figures.errors} "
        f"{figures.sample_error[:200]}"
    )
    return figures


def _served(server: servers.Server, offset: int) -> int:
    with server.log.open("rb") as f:
        f.seek(offset)
        return sum(1 for line in f if b'"type":"access"' in line and b'"route":"/graphql"' in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--duration", type=int, default=Load().duration_s, help="seconds per scenario"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    args = parser.parse_args()
    load = Load(duration_s=args.duration)
    WORK.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count() or 1
    run = report.Run(
        load=load,
        cpus=cpus,
        workers=cpus,
        versions=report.environment_versions(),
        load_before=os.getloadavg(),
    )
    wrk_bin = servers.ensure_wrk()
    servers.install_postgraphile()
    run.versions["node"] = subprocess.run(
        ["node", "--version"], capture_output=True, text=True
    ).stdout.strip()
    run.versions["postgraphile"] = "5.1.5"
    secrets = servers.Secrets()
    cipher = DataCipher([secrets.encryption_key])
    anchor = datetime.now(UTC).date()
    log(f"building {PG_DATABASE} (anchor {anchor})")
    data, run.setup = asyncio.run(build(FULL, anchor, cipher, PASSWORD))
    run.rows = {
        "clinics": len(data.clinics),
        "counselors": len(data.counselors),
        "patients": len(data.patients),
        "sessions": len(data.sessions),
        "users": len(data.users),
    }
    started: list[servers.Server] = []
    try:
        gateway = servers.start_gateway(secrets, cpus)
        started.append(gateway)
        peer = servers.start_postgraphile(secrets, cpus)
        started.append(peer)
        gateway.wait_ready()
        peer.wait_ready()
        log("servers up; logging in")
        logins = asyncio.run(login_all(gateway.url.rsplit("/", 1)[0], pick_accounts(data)))
        run.logins = {
            "clinic admins": len(logins.admins),
            "counselors": len(logins.counselors),
            "patients": len(logins.patients),
        }
        req = build_requests(data, logins, FULL)
        far = datetime.combine(anchor + timedelta(days=50), datetime.min.time(), tzinfo=UTC)
        at = (f"{far:%Y-%m-%d}T10:00:00Z", f"{far:%Y-%m-%d}T12:00:00Z")
        env = servers.gateway_env(secrets, cpus)
        run.statements = asyncio.run(count_all(env, req, at))
        mixed_stmts = round(sum(run.statements[k] * w for k, w in MIX), 1)
        figs = run.figures
        figs.append(
            scenario(
                "dashboard",
                gateway,
                [("dashboard", 1.0)],
                load.connections,
                wrk_bin,
                req,
                load,
                run.statements["dashboard"],
            )
        )
        figs.append(
            scenario(
                "postgraphile dashboard",
                peer,
                [("pg_dashboard", 1.0)],
                load.connections,
                wrk_bin,
                req,
                load,
                "n/a",
            )
        )
        figs.append(
            scenario(
                "day view",
                gateway,
                [("day", 1.0)],
                load.connections,
                wrk_bin,
                req,
                load,
                run.statements["day"],
            )
        )
        figs.append(
            scenario(
                "mixed",
                gateway,
                list(MIX),
                load.mixed_connections,
                wrk_bin,
                req,
                load,
                mixed_stmts,
                cancel_part=(0, 2),
            )
        )
        # 500 users with think time, offering the target's 25,000 requests per minute: the
        # latency a user sees at that rate (the closed loop above measures capacity instead).
        figs.append(
            scenario(
                "mixed (paced 25k/min)",
                gateway,
                list(MIX),
                load.mixed_connections,
                wrk_bin,
                req,
                load,
                mixed_stmts,
                think_ms=round(load.mixed_connections / (MIXED_TARGET_PER_MIN / 60) * 1000),
                cancel_part=(1, 2),
            )
        )
        # The same dashboard load against a gateway restarted with RESPONSE_CACHE on: the
        # warm-up fills each user's entry, the measured run is served from the cache.
        gateway.stop()
        started.remove(gateway)
        cached = servers.start_gateway(secrets, cpus, response_cache=True)
        started.append(cached)
        cached.wait_ready()
        figs.append(
            scenario(
                "dashboard (cache warm)",
                cached,
                [("dashboard", 1.0)],
                load.connections,
                wrk_bin,
                req,
                load,
                "1-2",
            )
        )
        cached.stop()
        started.remove(cached)
        gateway = servers.start_gateway(secrets, cpus)
        started.append(gateway)
        gateway.wait_ready()
        profile_text = (
            "## Profile (py-spy, generated)\n\nNot recorded in this run (--no-profile).\n"
        )
        if not args.no_profile:
            scenario(
                "dashboard (profiled)",
                gateway,
                [("dashboard", 1.0)],
                load.connections,
                wrk_bin,
                req,
                load,
                run.statements["dashboard"],
                profile_out="dashboard.pyspy.txt",
            )
            profile_text = _profile_section(sorted(WORK.glob("dashboard.pyspy.txt.*")))
    finally:
        for server in reversed(started):
            server.stop()
    run.load_after = os.getloadavg()
    by = {f.name: f for f in run.figures}
    t, p = report.ratios(by["dashboard"], by["postgraphile dashboard"])
    print(f"\nDASHBOARD vs PostGraphile: throughput ratio {t:.2f}, p99 ratio {p:.2f}")
    c, _ = report.ratios(by["dashboard (cache warm)"], by["postgraphile dashboard"])
    print(f"DASHBOARD (cache warm) vs PostGraphile: throughput ratio {c:.2f}\n")
    for f in run.figures:
        print(
            f"{f.name:24} {f.rps:9,.0f} req/s  p50 {f.p50_ms:7.1f}  p95 {f.p95_ms:7.1f}  p99 {f.p99_ms:7.1f} ms"
            f"  errors {f.errors}"
        )
    kept = ""
    if RESULTS.exists() and HAND_WRITTEN in RESULTS.read_text():
        kept = RESULTS.read_text().split(HAND_WRITTEN, 1)[1]
        kept = HAND_WRITTEN + kept
    report.write(run, profile_text + ("\n" + kept if kept else ""))
    log(f"wrote {RESULTS}")


def _profile_section(raws: list[Path]) -> str:
    if not raws:
        return "## Profile (py-spy, generated)\n\npy-spy produced no output (see the log above).\n"
    s = profile.summarise(raws)
    lines = [
        "## Profile (py-spy, generated)",
        "",
        "Every gateway worker sampled at 200 Hz (non-blocking) during a repeat of the dashboard load, "
        f"{int(s['samples'][0][1]) if s['samples'] else 0} busy samples in all (the supervisor's "
        "health-check thread left out). Raw stacks: `var/bench/dashboard.pyspy.txt.<worker>`; "
        "`python -m benchmarks.profile FILE...` summarises them again.",
        "",
        "Self time by layer (leaf frame's package, first match from the leaf up):",
        "",
    ]
    lines += [f"- {pct:5.1f}%  {name}" for name, pct in s["layers"]]
    lines += ["", "Top functions by self time:", ""] + [
        f"- {pct:5.1f}%  `{n}`" for n, pct in s["self"]
    ]
    lines += ["", "Inclusive time of notable frames:", ""] + [
        f"- {pct:5.1f}%  `{n}`" for n, pct in s["inclusive"]
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
