"""Variants: the top level with each variant's overrides merged in, origins kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._problems import KeyPath

SECTIONS = ("task", "recipe", "retrieval", "model", "finetune")
DEFAULT_VARIANT = "default"


@dataclass(frozen=True)
class Merged:
    """One variant's sections after merging, and where each part was written."""

    name: str
    data: dict[str, Any]
    #: merged key path -> the key path in the document it came from
    origins: dict[KeyPath, KeyPath]

    def source(self, path: KeyPath) -> KeyPath:
        """Where ``path`` was written: the origin of its nearest present part, extended."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]] + path[end:]
        return path


def variant_names(data: dict[str, Any]) -> list[str] | None:
    """The variants in the order written, ``['default']`` without any, None when unreadable."""
    variants = data.get("variants")
    if variants is None or variants == {}:
        return [DEFAULT_VARIANT]
    return list(variants) if isinstance(variants, dict) else None


def top_level(data: dict[str, Any]) -> Merged:
    """The top-level sections alone (the ``default`` variant when there are no variants)."""
    return merge_variant(data, DEFAULT_VARIANT, with_override=False)


def merge_variant(data: dict[str, Any], name: str, with_override: bool = True) -> Merged:
    """Merge variant ``name``'s override (if any) over the top-level sections."""
    base = {key: data[key] for key in SECTIONS if data.get(key) is not None}
    origins: dict[KeyPath, KeyPath] = {}
    _record(base, (), (), origins)
    variants = data.get("variants") if with_override else None
    override = variants.get(name) if isinstance(variants, dict) else None
    merged = _merge(base, override or {}, (), ("variants", name), origins)
    return Merged(name=name, data=_without_nulls(merged), origins=origins)


def _merge(base: dict, over: dict, path: KeyPath, src: KeyPath, origins: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        here, there = path + (key,), src + (key,)
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            origins[here] = there
            out[key] = _merge(out[key], value, here, there, origins)
            continue
        _forget(here, origins)
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
            _record(value, here, there, origins)
    return out


def _record(value: Any, path: KeyPath, src: KeyPath, origins: dict) -> None:
    origins[path] = src
    if isinstance(value, dict):
        for key, item in value.items():
            _record(item, path + (key,), src + (key,), origins)


def _forget(path: KeyPath, origins: dict) -> None:
    for known in [p for p in origins if p[: len(path)] == path]:
        del origins[known]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value
