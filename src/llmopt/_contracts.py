"""Optional members of plugin objects, filled in from the base classes' defaults.

Every optional member that the engine reads from a provider, metric, retriever or
index is declared on a small base class (:class:`llmopt.ProviderBase`,
:class:`llmopt.MetricBase`, :class:`llmopt.retrieval.RetrieverBase`,
:class:`llmopt.retrieval.IndexBase`). A plugin object that derives from its base has
them all. One that only follows the protocol gets the missing ones here, once, when
it enters the engine; the engine then reads each member directly.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, TypeVar

from .errors import PluginError

T = TypeVar("T")


def with_defaults(obj: T, base: type, optional: tuple[str, ...], required: tuple[str, ...], kind: str) -> T:
    """``obj`` with every ``optional`` member of ``base`` it lacks set to the default;
    PluginError naming the object when a ``required`` member is missing."""
    if isinstance(obj, base):
        return obj
    missing = [name for name in required if not _has(obj, name)]
    if missing:
        raise PluginError(f"{kind} {_name(obj)} lacks {', '.join(missing)} (derive it from {base.__name__})")
    for name in optional:
        if not _has(obj, name):
            _set_default(obj, base, name, kind)
    return obj


def _has(obj: Any, name: str) -> bool:
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


def _set_default(obj: Any, base: type, name: str, kind: str) -> None:
    default = inspect.getattr_static(base, name)
    value = types.MethodType(default, obj) if inspect.isfunction(default) else default
    try:
        setattr(obj, name, value)
    except (AttributeError, TypeError):
        raise PluginError(f"{kind} {_name(obj)} has no {name!r} and none can be set: derive it from {base.__name__}") from None


def _name(obj: Any) -> str:
    name = inspect.getattr_static(obj, "name", None)
    return repr(name) if isinstance(name, str) else type(obj).__qualname__
