"""The plugin manager: built-ins, entry-point plugins and project-local plugins."""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import pluggy

from . import hookspecs
from .errors import PluginError

if TYPE_CHECKING:
    from .metric._base import Metric
    from .provider._base import ProviderType
    from .report import ReportFormat
    from .retrieval._base import RetrieverType

ENTRY_POINT_GROUP = "llmopt"


@dataclass
class Registry:
    """What the loaded plugins registered, by name."""

    pm: pluggy.PluginManager
    metrics: dict[str, "Metric"] = field(default_factory=dict)
    providers: dict[str, "ProviderType"] = field(default_factory=dict)
    retrievers: dict[str, "RetrieverType"] = field(default_factory=dict)
    report_formats: dict[str, "ReportFormat"] = field(default_factory=dict)


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
    with importing_from(rootdir):
        for name in project_plugins:
            _register_module(pm, name)
    _check_hook_names(pm)
    return _collect(pm)


@contextmanager
def importing_from(rootdir: Path | None, fresh: Iterable[str] = ()) -> Iterator[None]:
    """Let modules be imported from ``rootdir`` for the length of the block only.

    The ``fresh`` top-level names (a project's plugin packages) are imported anew
    even when a module of the same name came from another project; afterwards
    ``sys.path`` and those ``sys.modules`` entries are as they were.
    """
    root = str(rootdir) if rootdir is not None else None
    saved = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] in set(fresh)}
    for name in saved:
        del sys.modules[name]
    if root is not None:
        sys.path.insert(0, root)
        importlib.invalidate_caches()
    try:
        yield
    finally:
        if root is not None and root in sys.path:
            sys.path.remove(root)  # the entry added above: the first one
        if saved:
            for name in [n for n in sys.modules if n.split(".")[0] in set(fresh)]:
                del sys.modules[name]
            sys.modules.update(saved)


def _register_module(pm: pluggy.PluginManager, name: str) -> None:
    if pm.get_plugin(name) is not None:
        return
    try:
        module = importlib.import_module(name)
    except SyntaxError as exc:  # one line with the file and line, not importlib's frames
        raise PluginError(f"cannot import llmopt plugin {name!r}: {_syntax_where(exc)}: SyntaxError: {exc.msg}") from None
    except ImportError as exc:
        raise PluginError(f"cannot import llmopt plugin {name!r}: {exc}") from exc
    except Exception as exc:  # the module raised while it was imported
        where = _raised_where(exc)
        prefix = f"{where}: " if where else ""
        raise PluginError(f"cannot import llmopt plugin {name!r}: {prefix}{type(exc).__name__}: {exc}") from None
    _check_marked(module, name)
    pm.register(module, name=name)


def _check_marked(module: Any, name: str) -> None:
    """PluginError when the module defines a function named like one of llmopt's hooks
    without ``@llmopt.hookimpl``: pluggy would pass it over, and its metrics (or
    providers, retrievers) would be missing without a word."""
    hooks = {hook for hook in dir(hookspecs) if hook.startswith("llmopt_")}
    for attribute in sorted(hooks & set(vars(module))):
        function = getattr(module, attribute)
        if inspect.isfunction(function) and getattr(function, "llmopt_impl", None) is None:
            code = function.__code__
            raise PluginError(
                f"llmopt plugin {name!r}: {attribute} ({code.co_filename}:{code.co_firstlineno}) is not marked"
                " @llmopt.hookimpl, so llmopt would never call it"
            )


def _syntax_where(exc: SyntaxError) -> str:
    """``file:line[:col]`` of a syntax error."""
    where = f"{exc.filename or '?'}:{exc.lineno or '?'}"
    return f"{where}:{exc.offset}" if exc.offset else where


def _raised_where(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame of ``exc`` outside importlib's machinery."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def _check_hook_names(pm: pluggy.PluginManager) -> None:
    """PluginError naming the plugin and the hook when a hookimpl names no llmopt hook
    (a misspelling such as ``llmopt_metric`` would otherwise be ignored)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = ", ".join(sorted(name for name in dir(hookspecs) if name.startswith("llmopt_")))
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"llmopt plugin {name!r}: {exc} (llmopt's hooks: {known})") from None


def _collect(pm: pluggy.PluginManager) -> Registry:
    registry = Registry(pm=pm)
    tables = (
        (pm.hook.llmopt_metrics, registry.metrics, "metric"),
        (pm.hook.llmopt_provider_types, registry.providers, "provider"),
        (pm.hook.llmopt_retrievers, registry.retrievers, "retriever"),
        (pm.hook.llmopt_report_formats, registry.report_formats, "report format"),
    )
    for hook, table, kind in tables:
        # pluggy returns the last registered plugin first: built-ins go in first.
        for impl_result in reversed(hook()):
            for item in impl_result or ():
                _add(table, item, kind)
    for retriever in registry.retrievers.values():
        retriever.bind(registry.retrievers)  # the hybrid fuses any registered retriever
    return registry


def _add(table: dict, item: Any, kind: str) -> None:
    name = inspect.getattr_static(item, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"a plugin registered a {kind} without a name: {item!r}")
    if name in table:
        raise PluginError(f"{kind} {name!r} is registered twice")
    table[name] = _declared(item, kind)


def _declared(item: Any, kind: str) -> Any:
    """The item with the defaults of the optional members its protocol declares."""
    if kind == "metric":
        from .metric import declared_metric

        return declared_metric(item)
    if kind == "retriever":
        from .retrieval._base import declared_retriever

        return declared_retriever(item)
    return item
