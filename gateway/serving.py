"""Serving with several worker processes, each on its own SO_REUSEPORT socket.

uvicorn's own multi-worker mode shares one listening socket: the worker that wakes
first accepts every connection waiting (its event loop accepts until the queue is
empty), so a handful of keep-alive clients can pin one core while the others idle.
With one SO_REUSEPORT socket per worker the kernel spreads new connections over the
workers instead.

The supervisor forwards SIGTERM/SIGINT to the workers (each then drains as uvicorn
does: stops accepting, finishes what is in flight) and restarts a worker that dies
on its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from typing import Any

import uvicorn

log = logging.getLogger("santana.serve")

RESTART_PAUSE_SECONDS = 1.0


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _worker(config: dict[str, Any]) -> None:
    """One worker process: its own socket on the shared port, one uvicorn server."""
    sock = bind(config["host"], config["port"])
    uvicorn.Server(uvicorn.Config(**config)).run(sockets=[sock])


def run(workers: int, **config: Any) -> None:
    """Serve `config` (uvicorn.Config keyword arguments) with `workers` processes."""
    if workers <= 1 or not reuse_port_supported():
        uvicorn.run(workers=workers, **config)
        return
    # Fail fast, in the supervisor, if the address is taken or not ours to bind.
    bind(config["host"], config["port"]).close()
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(config,), name="santana-worker")
        process.start()
        return process

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    processes = [start() for _ in range(workers)]
    log.info("serving on %s:%s with %d workers", config["host"], config["port"], workers)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        for i, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                log.warning(
                    "worker %s exited (%s); starting another", process.pid, process.exitcode
                )
                time.sleep(RESTART_PAUSE_SECONDS)
                processes[i] = start()
        if stopping:
            break
        time.sleep(0.5)
    for process in processes:
        process.join()
