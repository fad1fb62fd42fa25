"""Plugin discovery and the contract check.

Plugins are found through the `santana` entry-point group (built-in ones too).
Each is checked against the contract before it is registered; a plugin that
fails to import or breaks the contract is logged, kept in `problems` for the
platform admins, and skipped: the gateway still starts.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from gateway.integrations import hookspecs
from gateway.integrations.errors import ContractError
from gateway.integrations.hookspecs import ENTRY_POINT_GROUP, HOOKS, PAIRED_HOOKS, PROJECT
from gateway.integrations.types import CONTRACT_VERSION, Kind, PluginDeclaration, check_name

log = logging.getLogger("santana.plugins")


@dataclass(frozen=True)
class LoadedPlugin:
    declaration: PluginDeclaration
    obj: Any
    source: str  # "entry point santana-example-plugin 0.1.0" or "registered in-process"
    hooks: frozenset[str]

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def kind(self) -> Kind:
        return self.declaration.kind


@dataclass(frozen=True)
class PluginProblem:
    name: str
    source: str
    reason: str


class PluginManager:
    """The installed plugins (checked), and the ones that were skipped and why."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, LoadedPlugin] = {}
        self.problems: list[PluginProblem] = []
        self.skipped_by_operator: list[str] = []

    # --- discovery ---------------------------------------------------------------------

    @classmethod
    def discover(cls, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> PluginManager:
        """Load every `santana` entry point the operator's allow/deny lists admit."""
        manager = cls()
        manager.load_entry_points(entry_points(group=ENTRY_POINT_GROUP), allow=allow, deny=deny)
        return manager

    def load_entry_points(
        self, eps: Iterable[EntryPoint], allow: Iterable[str] = (), deny: Iterable[str] = ()
    ) -> None:
        allowed, denied = set(allow), set(deny)
        for ep in eps:
            if ep.name in denied or (allowed and ep.name not in allowed):
                self.skipped_by_operator.append(ep.name)
                log.info("plugin %s skipped by PLUGINS_ALLOW/PLUGINS_DENY", ep.name)
                continue
            dist = getattr(ep, "dist", None)
            source = f"entry point {ep.value}" + (f" ({dist.name} {dist.version})" if dist else "")
            try:
                obj = ep.load()
            except Exception as exc:  # any import failure is the plugin's problem, not ours
                self._problem(ep.name, source, f"failed to import: {type(exc).__name__}: {exc}")
                continue
            try:
                self.register(obj, source=source, expected_name=ep.name)
            except ContractError as exc:
                self._problem(ep.name, source, str(exc))

    def _problem(self, name: str, source: str, reason: str) -> None:
        self.problems.append(PluginProblem(name=name, source=source, reason=reason))
        log.error("plugin %s not loaded (%s): %s", name, source, reason)

    # --- registration ------------------------------------------------------------------

    def register(
        self, obj: Any, *, source: str = "registered in-process", expected_name: str | None = None
    ) -> LoadedPlugin:
        """Check `obj` against the contract and register it; raises ContractError."""
        declaration = _declaration(obj)
        if expected_name is not None and declaration.name != expected_name:
            raise ContractError(
                f"entry point is named {expected_name!r} "
                f"but the plugin declares {declaration.name!r}"
            )
        if declaration.name in self._plugins:
            raise ContractError(f"a plugin named {declaration.name!r} is already installed")
        try:
            self._pm.register(obj, name=declaration.name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self._pm.has_plugin(declaration.name):
                self._pm.unregister(name=declaration.name)  # pluggy may have added some hooks
            raise ContractError(f"hook signature does not match the contract: {exc}") from exc
        try:
            hooks = self._check_hooks(obj, declaration)
        except ContractError:
            self._pm.unregister(obj)
            raise
        loaded = LoadedPlugin(
            declaration=declaration, obj=obj, source=source, hooks=frozenset(hooks)
        )
        self._plugins[declaration.name] = loaded
        log.info("plugin %s (%s) loaded from %s", declaration.name, declaration.kind.value, source)
        return loaded

    def unregister(self, name: str) -> None:
        loaded = self._plugins.pop(name, None)
        if loaded is not None:
            self._pm.unregister(loaded.obj)

    def _check_hooks(self, obj: Any, declaration: PluginDeclaration) -> set[str]:
        implemented: dict[str, Callable[..., Any]] = {}
        for caller in self._pm.get_hookcallers(obj) or []:
            if caller.spec is None or caller.name not in HOOKS:
                raise ContractError(f"implements unknown hook {caller.name!r}")
            impl = next(i for i in caller.get_hookimpls() if i.plugin is obj)
            if impl.hookwrapper or impl.wrapper:
                raise ContractError(f"hook {caller.name!r} may not be a wrapper")
            if not inspect.iscoroutinefunction(impl.function):
                raise ContractError(f"hook {caller.name!r} must be `async def`")
            info = HOOKS[caller.name]
            if info.kind is not None and info.kind is not declaration.kind:
                raise ContractError(
                    f"hook {caller.name!r} belongs to kind {info.kind.value!r}, "
                    f"plugin is {declaration.kind.value!r}"
                )
            implemented[caller.name] = impl.function
        missing = sorted(
            name
            for name, info in HOOKS.items()
            if info.required and info.kind in (None, declaration.kind) and name not in implemented
        )
        if missing:
            raise ContractError(f"missing required hooks: {', '.join(missing)}")
        for hook, partner in PAIRED_HOOKS.items():
            if hook in implemented and partner not in implemented:
                raise ContractError(f"implements {hook!r} without {partner!r}")
        return set(implemented)

    # --- lookup ----------------------------------------------------------------------------

    @property
    def plugins(self) -> dict[str, LoadedPlugin]:
        return dict(self._plugins)

    def get(self, name: str) -> LoadedPlugin | None:
        return self._plugins.get(name)

    def implementation(self, name: str, hook: str) -> Callable[..., Any] | None:
        """The plugin's own implementation of `hook` (dispatch calls one plugin, not all)."""
        caller = getattr(self._pm.hook, hook, None)
        if caller is None:
            return None
        for impl in caller.get_hookimpls():
            if impl.plugin_name == name:
                return _bind(impl.function, impl.argnames + impl.kwargnames)
        return None


def _bind(function: Callable[..., Any], argnames: tuple[str, ...]) -> Callable[..., Any]:
    # Like pluggy: an implementation may accept a subset of the spec's arguments.
    def call(**kwargs: Any) -> Any:
        return function(**{k: v for k, v in kwargs.items() if k in argnames})

    return call


def _declaration(obj: Any) -> PluginDeclaration:
    declaration = getattr(obj, "declaration", None)
    if not isinstance(declaration, PluginDeclaration):
        raise ContractError("has no `declaration` (a gateway.integrations.PluginDeclaration)")
    try:
        check_name(declaration.name)
    except ValueError as exc:
        raise ContractError(str(exc)) from exc
    if not isinstance(declaration.kind, Kind):
        raise ContractError(f"kind must be one of {', '.join(k.value for k in Kind)}")
    if declaration.contract.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
        raise ContractError(
            f"written for contract {declaration.contract}, this gateway speaks {CONTRACT_VERSION}"
        )
    from pydantic import BaseModel

    if not (
        isinstance(declaration.config_model, type)
        and issubclass(declaration.config_model, BaseModel)
    ):
        raise ContractError("config_model must be a pydantic BaseModel subclass")
    return declaration
