"""Upload throughput of one 20 MB document, end to end over HTTP.

    .venv/bin/python -m benchmarks.document_upload [--runs 5] [--mb 20]

A real uvicorn server on a loopback port, a migrated SQLite database and the
local store in a temporary directory; the client streams the file from disk.
Reports the median upload and download time and throughput, and (in a separate
run under tracemalloc) the peak Python memory the upload allocated, to show the
file is never held whole. Numbers go to docs/documents.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

from gateway.app import create_app
from gateway.db.engine import Database
from gateway.settings import load_settings
from gateway.testing import migrated_sqlite
from schema.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.factories import build_world

MB = 1024 * 1024
BLOCK = 256 * 1024


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        handle.write(b"%PDF-1.7\n")
        left = size - 9
        while left > 0:
            block = os.urandom(min(BLOCK, left))  # incompressible, like a scanned report
            handle.write(block)
            left -= len(block)


def stream(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            yield block


def serve(app: object) -> tuple[str, uvicorn.Server]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")  # type: ignore[arg-type]
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server


async def prepare(work: Path) -> tuple[object, dict[str, str], dict[str, str]]:
    url = await migrated_sqlite(work)
    settings = load_settings(
        app_env="test",
        database_url=url,
        document_local_dir=str(work / "documents"),
        rate_limit_enabled=False,
    )
    world = await build_world(Database(url), settings)
    token = GraphQLClient(httpx.AsyncClient(), settings).token_for(world.a.counselor)
    params = {"patientId": to_global_id("Patient", world.a.own_patient.id), "kind": "lab_report"}
    return create_app(settings), {"Authorization": f"Bearer {token}"}, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=int, default=20)
    args = parser.parse_args()
    size = args.mb * MB
    with tempfile.TemporaryDirectory(prefix="santana-doc-bench-") as tmp:
        work = Path(tmp)
        app, headers, params = asyncio.run(prepare(work))
        base, server = serve(app)
        source = work / "report.pdf"
        make_file(source, size)
        uploads, downloads = [], []
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(args.runs):
                started = time.perf_counter()
                response = client.post(
                    "/documents", params=params, headers=headers, content=stream(source)
                )
                uploads.append(time.perf_counter() - started)
                assert response.status_code == 201, response.text
                doc = response.json()["document"]["id"]
                started = time.perf_counter()
                with client.stream("GET", f"/documents/{doc}/content", headers=headers) as r:
                    received = sum(len(chunk) for chunk in r.iter_bytes())
                downloads.append(time.perf_counter() - started)
                assert received == size
            # Memory: the upload's peak Python allocations (server and client share the process).
            tracemalloc.start()
            response = client.post(
                "/documents", params=params, headers=headers, content=stream(source)
            )
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert response.status_code == 201
        server.should_exit = True
    up, down = statistics.median(uploads), statistics.median(downloads)
    print(f"file: {args.mb} MB, runs: {args.runs}, cpu count: {os.cpu_count()}")
    print(
        f"upload   median {up:.3f} s  ({args.mb / up:.1f} MB/s)  all: {[round(u, 3) for u in uploads]}"
    )
    print(f"download median {down:.3f} s  ({args.mb / down:.1f} MB/s)")
    print(f"upload peak traced memory: {peak / MB:.1f} MB (file is {args.mb} MB)")


if __name__ == "__main__":
    main()
