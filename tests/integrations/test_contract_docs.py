"""Meta-tests: every hook is documented, known to dispatch, and explained to plugin authors."""

from __future__ import annotations

import inspect
from pathlib import Path

from gateway.integrations import hookspecs
from gateway.integrations.hookspecs import HOOKS, PROJECT

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def spec_functions() -> dict[str, object]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, f"{PROJECT}_spec")
    }


def test_every_hook_has_a_docstring() -> None:
    specs = spec_functions()
    assert specs, "no hookspecs found"
    undocumented = [name for name, fn in specs.items() if not (inspect.getdoc(fn) or "").strip()]
    assert undocumented == [], f"hooks without a docstring: {undocumented}"


def test_every_hook_is_async_firstresult_and_known_to_dispatch() -> None:
    specs = spec_functions()
    assert set(specs) == set(HOOKS)
    for name, fn in specs.items():
        assert inspect.iscoroutinefunction(fn), name
        assert getattr(fn, f"{PROJECT}_spec")["firstresult"] is True, name
        params = list(inspect.signature(fn).parameters)  # type: ignore[arg-type]
        assert params[0] == "ctx", name
        assert set(params[1:]) == set(HOOKS[name].args), name


def test_every_hook_is_in_the_plugin_guide() -> None:
    guide = DOCS.read_text()
    missing = [name for name in HOOKS if f"`{name}`" not in guide]
    assert missing == [], f"docs/plugins.md does not describe: {missing}"
