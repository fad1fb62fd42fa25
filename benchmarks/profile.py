"""py-spy on one gateway worker under the dashboard load, summarised by layer and function."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from benchmarks.config import PROJECT

PY_SPY = PROJECT / ".venv" / "bin" / "py-spy"

# First match wins, checked from the leaf frame upwards: where a sample's time belongs.
LAYERS = (
    ("asyncpg (driver, protocol)", ("asyncpg/",)),
    ("SQLAlchemy (compile, ORM, results)", ("sqlalchemy/",)),
    ("graphql-core (validate, execute)", ("graphql/",)),
    ("strawberry (resolvers glue, extensions)", ("strawberry/",)),
    ("JSON encode/decode", ("json/", "orjson")),
    (
        "HTTP server (uvicorn, h11/httptools, starlette)",
        ("uvicorn/", "h11/", "httptools/", "starlette/"),
    ),
    ("JWT / crypto", ("jwt/", "cryptography/")),
    ("rate limiter (limits)", ("limits/",)),
    ("aiodataloader", ("aiodataloader",)),
    ("gateway + schema code", ("gateway/", "schema/")),
    ("asyncio event loop", ("asyncio/",)),
)


# Frames worth an inclusive figure: our code and the big pieces of the stack below it.
NOTABLE = (
    "(gateway/",
    "(schema/",
    "aiodataloader",
    "graphql/execution/execute.py",
    "graphql/validation/validate",
    "sqlalchemy/orm/loading.py",
    "sqlalchemy/orm/session.py",
    "sqlalchemy/sql/compiler.py",
    "sqlalchemy/engine/default.py",
    "asyncpg/connection.py",
    "asyncpg/prepared_stmt.py",
)


def ensure_py_spy() -> Path:
    if not PY_SPY.exists():
        subprocess.run(
            [str(PROJECT / ".venv" / "bin" / "pip"), "install", "--quiet", "py-spy"], check=True
        )
    return PY_SPY


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling `pid` (non-blocking: the worker is not paused per sample); returns at once."""
    argv = [
        str(ensure_py_spy()),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "200",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frames(stack: str) -> list[str]:
    return stack.split(";")


def _where(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)"; keep enough to recognise it.
    name, _, loc = frame.partition(" (")
    path = loc.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:])
    return f"{name} ({short})"


def summarise(raws: list[Path], top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Self time by layer, self time by function, inclusive time of notable frames (shares of samples)."""
    layers: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    lines = [line for raw in raws for line in raw.read_text().splitlines()]
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = _frames(stack)
        if "always_pong" in stack:
            continue  # uvicorn's health-check thread, blocked in recv(): not work
        total += count
        leaf = frames[-1]
        self_fn[_where(leaf)] += count
        layer = "other (stdlib, interpreter)"
        for frame in reversed(frames):
            hit = next((name for name, keys in LAYERS if any(k in frame for k in keys)), None)
            if hit:
                layer = hit
                break
        layers[layer] += count
        for seen in {_where(f) for f in frames if any(k in f for k in NOTABLE)}:
            inclusive[seen] += count
    if total == 0:
        return {"layers": [], "self": [], "inclusive": [], "samples": []}

    def share(c: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, 100.0 * v / total) for k, v in c.most_common(n)]

    return {
        "layers": share(layers, len(layers)),
        "self": share(self_fn, top),
        "inclusive": share(inclusive, top + 15),
        "samples": [("samples", float(total))],
    }


if (
    __name__ == "__main__"
):  # summarise an existing raw profile: python -m benchmarks.profile FILE...
    for section, rows in summarise([Path(a) for a in sys.argv[1:]]).items():
        print(f"## {section}")
        for name, pct in rows:
            print(f"{pct:6.1f}  {name}")
