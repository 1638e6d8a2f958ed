"""Checks of a judge metric's ``args``: ``judge`` (a model spec), ``scale``, ``rubric``."""

from __future__ import annotations

from typing import Any, Mapping

from ..spec._model import ModelSpec

#: The keys of ``args.judge``: those of a variant's ``model``.
JUDGE_KEYS = ("provider", "id", "params", "concurrency", "base_url", "options", "price", "timeout", "max_retries", "batch")
_STRINGS = ("provider", "id", "base_url")
_MAPPINGS = ("params", "options", "price")


def check_judge(metric: str, args: Mapping[str, Any]) -> list[str]:
    """Problems with ``args.judge``: a mapping like a variant's ``model``."""
    judge = args.get("judge")
    if judge is None:
        return [f"metric '{metric}' needs argument 'judge' (the judging model: {{provider, id, ...}})"]
    if not isinstance(judge, Mapping):
        return [f"argument 'judge' of metric '{metric}' must be a mapping {{provider, id, ...}}, got {judge!r}"]
    problems = [
        f"unknown key 'judge.{key}' for metric '{metric}' (allowed: {', '.join(JUDGE_KEYS)})"
        for key in judge
        if key not in JUDGE_KEYS
    ]
    if not isinstance(judge.get("provider"), str) or not judge.get("provider"):
        problems.append(_wrong(metric, "judge.provider", "the name of a provider", judge.get("provider")))
    return problems + [_wrong(metric, f"judge.{key}", wanted, judge[key]) for key, wanted in _value_faults(judge)]


def _value_faults(judge: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, what it must be) for each set value of ``judge`` of the wrong kind."""
    faults = [(key, "a string") for key in _STRINGS if _set(judge, key) and not isinstance(judge[key], str)]
    faults += [(key, "a mapping") for key in _MAPPINGS if _set(judge, key) and not isinstance(judge[key], Mapping)]
    for key, least in (("concurrency", 1), ("max_retries", 0)):
        if _set(judge, key) and not (_is_int(judge[key]) and judge[key] >= least):
            faults.append((key, f"a whole number >= {least}"))
    if _set(judge, "timeout") and not (_is_number(judge["timeout"]) and judge["timeout"] > 0):
        faults.append(("timeout", "a positive number of seconds"))
    if _set(judge, "batch") and not isinstance(judge["batch"], bool):
        faults.append(("batch", "true or false"))
    return [(key, wanted) for key, wanted in faults if key != "provider"]


def check_scale(metric: str, args: Mapping[str, Any]) -> list[str]:
    """Problems with ``args.scale``: two integers [low, high] with low < high."""
    scale = args.get("scale")
    if scale is None:
        return []
    if isinstance(scale, (list, tuple)) and len(scale) == 2 and all(_is_int(v) for v in scale) and scale[0] < scale[1]:
        return []
    return [_wrong(metric, "scale", "two integers [low, high] with low < high, e.g. [1, 5]", scale)]


def check_rubric(metric: str, args: Mapping[str, Any], required: bool) -> list[str]:
    """Problems with ``args.rubric``: a non-empty string (required by ``judge``)."""
    rubric = args.get("rubric")
    if rubric is None:
        return [f"metric '{metric}' needs argument 'rubric' (what the judge grades)"] if required else []
    if isinstance(rubric, str) and rubric.strip():
        return []
    return [_wrong(metric, "rubric", "a non-empty string", rubric)]


def judge_spec(args: Mapping[str, Any]) -> ModelSpec:
    """The judging model of checked ``args`` as a ModelSpec."""
    raw = dict(args["judge"])
    return ModelSpec(
        provider=raw["provider"],
        id=raw.get("id"),
        params=dict(raw.get("params") or {}),
        concurrency=raw.get("concurrency"),
        base_url=raw.get("base_url"),
        options=dict(raw.get("options") or {}),
        price=dict(raw["price"]) if raw.get("price") else None,
        timeout=float(raw["timeout"]) if raw.get("timeout") is not None else None,
        max_retries=raw.get("max_retries"),
        batch=bool(raw["batch"]) if raw.get("batch") is not None else None,
    )


def _set(judge: Mapping[str, Any], key: str) -> bool:
    return judge.get(key) is not None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _wrong(metric: str, key: str, wanted: str, value: Any) -> str:
    return f"argument '{key}' of metric '{metric}' must be {wanted}, got {value!r}"
