"""The plugin manager: built-ins, entry-point plugins and project-local plugins."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import pluggy

from . import hookspecs
from .errors import PluginError

if TYPE_CHECKING:
    from .metric._base import Metric
    from .provider._base import ProviderType
    from .retrieval._base import RetrieverType

ENTRY_POINT_GROUP = "llmopt"


@dataclass
class Registry:
    """What the loaded plugins registered, by name."""

    pm: pluggy.PluginManager
    metrics: dict[str, "Metric"] = field(default_factory=dict)
    providers: dict[str, "ProviderType"] = field(default_factory=dict)
    retrievers: dict[str, "RetrieverType"] = field(default_factory=dict)


def create_registry(
    project_plugins: Iterable[str] = (), rootdir: Path | None = None, entry_points: bool = True
) -> Registry:
    """Build a registry: built-ins first, then entry points, then project plugins.

    ``project_plugins`` are dotted module names importable from ``rootdir``
    (``plugins.brand`` for ``plugins/brand.py``).
    """
    from . import _builtins

    pm = pluggy.PluginManager("llmopt")
    pm.add_hookspecs(hookspecs)
    pm.register(_builtins, name="llmopt.builtins")
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for name in project_plugins:
        _register_module(pm, name, rootdir)
    return _collect(pm)


def _register_module(pm: pluggy.PluginManager, name: str, rootdir: Path | None) -> None:
    if pm.get_plugin(name) is not None:
        return
    if rootdir is not None and str(rootdir) not in sys.path:
        sys.path.insert(0, str(rootdir))
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise PluginError(f"cannot import llmopt plugin {name!r}: {exc}") from exc
    pm.register(module, name=name)


def _collect(pm: pluggy.PluginManager) -> Registry:
    registry = Registry(pm=pm)
    tables = (
        (pm.hook.llmopt_metrics, registry.metrics, "metric"),
        (pm.hook.llmopt_provider_types, registry.providers, "provider"),
        (pm.hook.llmopt_retrievers, registry.retrievers, "retriever"),
    )
    for hook, table, kind in tables:
        # pluggy returns the last registered plugin first: built-ins go in first.
        for impl_result in reversed(hook()):
            for item in impl_result or ():
                _add(table, item, kind)
    for retriever in registry.retrievers.values():
        bind = getattr(retriever, "bind", None)  # the hybrid fuses any registered retriever
        if callable(bind):
            bind(registry.retrievers)
    return registry


def _add(table: dict, item: object, kind: str) -> None:
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"a plugin registered a {kind} without a name: {item!r}")
    if name in table:
        raise PluginError(f"{kind} {name!r} is registered twice")
    table[name] = item
