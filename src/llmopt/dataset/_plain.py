"""Turn values loaded by ruamel.yaml (or given inline) into plain Python values."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["UnsupportedValue", "to_plain"]


class UnsupportedValue(ValueError):
    """A value a dataset row cannot hold (a set, bytes, an unknown YAML tag...)."""

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        where = f"field {key!r}" if key else "row"
        super().__init__(f"{where} holds an unsupported value of type {type(value).__name__}")


def to_plain(value: Any, key: str = "") -> Any:
    """A copy of ``value`` made of dict, list, str, int, float, bool and None only.

    ruamel's scalar subclasses become their base type; dates and times become ISO
    8601 strings. ``key`` is the dotted field path, for the error message.
    """
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, Mapping):
        return {k: to_plain(v, _join(key, k)) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return [to_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return _plain_scalar(value, key)


def _plain_scalar(value: Any, key: str) -> Any:
    if type(value).__name__ == "ScalarBoolean":  # ruamel's anchored boolean (an int)
        return bool(value)
    for base in (bool, str, int, float):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    raise UnsupportedValue(key, value)


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)
