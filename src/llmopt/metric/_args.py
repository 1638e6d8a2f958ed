"""Checks of a metric's ``args:``, each returning a list of problem messages."""

from __future__ import annotations

from typing import AbstractSet, Any, Mapping


def unknown_args(metric: str, args: Mapping[str, Any], allowed: AbstractSet[str]) -> list[str]:
    """One problem per key of ``args`` that is not in ``allowed``."""
    names = ", ".join(sorted(allowed)) or "none"
    return [
        f"unknown argument '{key}' for metric '{metric}' (allowed: {names})"
        for key in args
        if key not in allowed
    ]


def missing_arg(metric: str, args: Mapping[str, Any], key: str) -> list[str]:
    """A problem when the required ``key`` is absent."""
    if key in args:
        return []
    return [f"metric '{metric}' needs argument '{key}'"]


def bool_arg(metric: str, args: Mapping[str, Any], key: str) -> list[str]:
    """A problem when ``key`` is given and is not true/false."""
    if key not in args or isinstance(args[key], bool):
        return []
    return [_wrong_type(metric, key, "true or false", args[key])]


def str_arg(metric: str, args: Mapping[str, Any], key: str) -> list[str]:
    """A problem when ``key`` is given and is not a string."""
    if key not in args or isinstance(args[key], str):
        return []
    return [_wrong_type(metric, key, "a string", args[key])]


def str_list_arg(metric: str, args: Mapping[str, Any], key: str) -> list[str]:
    """A problem when ``key`` is given and is not a list of non-empty strings."""
    if key not in args:
        return []
    value = args[key]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value):
        return []
    return [_wrong_type(metric, key, "a list of non-empty strings", value)]


def choice_arg(metric: str, args: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> list[str]:
    """A problem when ``key`` is given and is not one of ``choices``."""
    if key not in args or args[key] in choices:
        return []
    wanted = " or ".join(repr(c) for c in choices)
    return [f"argument '{key}' of metric '{metric}' must be {wanted}, got {args[key]!r}"]


def _wrong_type(metric: str, key: str, wanted: str, value: Any) -> str:
    return f"argument '{key}' of metric '{metric}' must be {wanted}, got {value!r}"
