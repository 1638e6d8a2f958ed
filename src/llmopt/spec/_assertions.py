"""Assertions: their checks, and their expansion to one AssertionSpec per variant."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ._model import AssertionSpec, Location, RegressionSpec, VariantSpec, metric_key
from ._problems import Issue, KeyPath, is_dirty
from ._suggest import unknown_name

if TYPE_CHECKING:
    from ..registry import Registry


def assertion_issues(
    data: dict[str, Any], names: list[str] | None, registry: "Registry | None", earlier: Sequence[Issue]
) -> list[Issue]:
    """Problems of every assertion, each check run on the keys the schema found no fault with."""
    items = data.get("assertions")
    issues: list[Issue] = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        path: KeyPath = ("assertions", index)
        if not isinstance(item, dict) or any(i.concerns == path for i in earlier):
            continue
        if _clean(earlier, path, "min", "max", "vs", "min_delta", "max_drop", "regression", "confidence"):
            issues += _shape_issues(item, path)
        if names is not None and _clean(earlier, path, "variant", "vs"):
            issues += _variant_issues(item, path, names)
        if registry is not None and _clean(earlier, path, "metric", "args"):
            found = metric_issues(item, path, registry)
            issues += found
            if not found and _clean(earlier, path, *_BOUNDED):
                issues += range_issues(item, path, registry.metrics[item["metric"]])
    return issues


def _clean(earlier: Sequence[Issue], path: KeyPath, *keys: str) -> bool:
    """True when no earlier problem concerns any of the assertion's ``keys``."""
    return not is_dirty(earlier, [path + (key,) for key in keys])


_NOT_WITH_REGRESSION = ("vs", "min", "max", "min_delta", "max_drop")


def _shape_issues(item: dict[str, Any], path: KeyPath) -> list[Issue]:
    if "regression" in item:
        return _regression_issues(item, path)
    if "vs" in item:
        message = "a comparison (vs) takes min_delta, not min or max"
        issues = [Issue(path + (key,), message) for key in ("min", "max") if key in item]
        if "min_delta" in item and "max_drop" in item:
            message = "max_drop (not worse by more than) and min_delta (better by at least) exclude each other"
            issues.append(Issue(path + ("max_drop",), message))
        return issues
    issues = []
    if "min_delta" in item:
        issues.append(Issue(path + ("min_delta",), "min_delta needs vs: the variant to compare against"))
    elif "max_drop" in item:
        message = "max_drop needs vs: the variant to compare against (or regression: {max_drop: ...} for the stored baseline)"
        issues.append(Issue(path + ("max_drop",), message))
    elif "min" not in item and "max" not in item:
        issues.append(Issue(path, "missing 'min' or 'max' (or 'vs' with 'min_delta' to compare variants)"))
    if "min" in item and "max" in item and item["min"] > item["max"]:
        issues.append(Issue(path + ("min",), f"min ({item['min']}) is greater than max ({item['max']})", at_value=True))
    return issues


def _regression_issues(item: dict[str, Any], path: KeyPath) -> list[Issue]:
    message = "regression compares the variant with its stored baseline: it takes no {key}"
    issues = [Issue(path + (key,), message.format(key=key)) for key in _NOT_WITH_REGRESSION if key in item]
    if "confidence" in item:
        message = "the confidence of a regression goes inside it: regression: {max_drop: ..., confidence: ...}"
        issues.append(Issue(path + ("confidence",), message))
    return issues


def _variant_issues(item: dict[str, Any], path: KeyPath, names: list[str]) -> list[Issue]:
    issues = [
        Issue(path + (key,), unknown_name("variant", item[key], names), at_value=True)
        for key in ("variant", "vs")
        if key in item and item[key] not in names
    ]
    if issues or "vs" not in item:
        return issues
    if item.get("variant") == item["vs"]:
        return [Issue(path + ("vs",), f"vs names the assertion's own variant '{item['vs']}'", at_value=True)]
    if "variant" not in item and names == [item["vs"]]:
        return [Issue(path, f"nothing to compare: '{item['vs']}' is the only variant")]
    return []


def metric_issues(item: dict[str, Any], path: KeyPath, registry: "Registry") -> list[Issue]:
    metric = registry.metrics.get(item["metric"])
    if metric is None:
        message = unknown_name("metric", item["metric"], sorted(registry.metrics))
        return [Issue(path + ("metric",), message, at_value=True)]
    args = dict(item.get("args", {}))
    found = metric.check_args(args)
    judge = args.get("judge")
    if metric.asks_model and isinstance(judge, dict) and isinstance(judge.get("provider"), str):
        if judge["provider"] not in registry.providers:  # a judge metric's model (args.judge)
            found.append("judge.provider: " + unknown_name("provider", judge["provider"], sorted(registry.providers)))
    return [Issue(path + ("args",), message) for message in found]


#: An assertion's numbers that a metric's value range bounds.
_BOUNDED = ("min", "max", "min_delta", "max_drop", "regression")


def range_issues(item: dict[str, Any], path: KeyPath, metric: Any) -> list[Issue]:
    """A ``min`` or ``max`` outside the values the metric can take (its ``value_range``,
    checked when the metric was registered), and a ``min_delta`` or ``max_drop`` wider
    than that whole range: a check that can never pass, or never fail, whatever the
    answers."""
    low, high = getattr(metric, "value_range", (None, None))
    shown = f"{item['metric']} takes values {_values(low, high)}"
    never, always = "can never be met", "is always met, so the check cannot fail"
    issues = []
    for key in ("min", "max"):
        value = _number(item.get(key))
        if value is None:
            continue
        too_high = high is not None and value > high
        too_low = low is not None and value < low
        if too_high or too_low:  # a min above the range, or a max below it, is never met
            outcome = never if (key == "min") == too_high else always
            issues.append(Issue(path + (key,), f"{key} {value:g} {outcome}: {shown}", at_value=True))
    if low is None or high is None:
        return issues
    span = high - low
    regression = item.get("regression")
    for key_path, raw in (
        (("min_delta",), item.get("min_delta")),
        (("max_drop",), item.get("max_drop")),
        (("regression", "max_drop"), regression.get("max_drop") if isinstance(regression, dict) else None),
    ):
        value = _number(raw)
        if value is None or (abs(value) if key_path[-1] == "min_delta" else value) <= span:
            continue
        outcome = never if key_path[-1] == "min_delta" and value > 0 else always
        issues.append(Issue(path + key_path, f"{key_path[-1]} {value:g} {outcome}: {shown}, {span:g} apart at most",
                            at_value=True))
    return issues


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number (not a bool), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _values(low: float | None, high: float | None) -> str:
    if low is None:
        return "of any size" if high is None else f"of {high:g} or less"
    return f"of {low:g} or more" if high is None else f"from {low:g} to {high:g}"


Misfit = Callable[[str, str, bool], "str | None"]


def misfit_finder(variants: Mapping[str, VariantSpec], registry: "Registry | None") -> Misfit:
    """A function (metric name, variant name, implicit) -> why the metric does not apply
    to that variant, or None when it does (or when it cannot be told).

    A metric that reads the output never applies to a retrieval-only variant. When the
    variant is implicit (an assertion without ``variant``), a retrieval metric also
    skips the variants without retrieval; named explicitly, such a variant retrieved
    nothing and scores accordingly (recall 0).
    """

    def misfit(name: str, variant_name: str, implicit: bool) -> str | None:
        metric = registry.metrics.get(name) if registry is not None else None
        variant = variants.get(variant_name)
        if metric is None or variant is None:
            return None
        if variant.model is None and metric.needs_output:
            return f"variant '{variant_name}' has no model (a retrieval-only variant: only retrieval metrics apply)"
        if implicit and variant.retrieval is None and metric.needs_retrieval:
            return f"variant '{variant_name}' has no retrieval"
        return None

    return misfit


def fit_issues(data: dict[str, Any], names: list[str] | None, misfit: Misfit, earlier: Sequence[Issue]) -> list[Issue]:
    """Assertions whose metric cannot measure the variants they name (or any variant)."""
    items = data.get("assertions")
    issues: list[Issue] = []
    for index, item in enumerate(items if isinstance(items, list) and names is not None else []):
        path: KeyPath = ("assertions", index)
        keys = [path + (k,) for k in ("metric", "args", "variant", "vs")]
        if isinstance(item, dict) and path not in {i.concerns for i in earlier} and not is_dirty(earlier, keys):
            issues += _fit_issue(item, path, names or [], misfit)
    return issues


def _fit_issue(item: dict[str, Any], path: KeyPath, names: list[str], misfit: Misfit) -> list[Issue]:
    name = item["metric"]
    named = [item[k] for k in ("variant", "vs") if k in item]
    key = metric_key(name, item.get("args") or {})
    messages = [f"metric '{key}' reads the model's output, but {r}" for v in named if (r := misfit(name, v, False))]
    if "variant" not in item:
        candidates = [n for n in names if n != item.get("vs")]
        unfit = [r for n in candidates if (r := misfit(name, n, True)) is not None]
        if candidates and len(unfit) == len(candidates):
            messages.insert(0, f"metric '{key}' applies to no variant: {'; '.join(unfit)}")
    return [Issue(path + ("metric",), message, at_value=True) for message in messages[:1]]


def build_assertions(
    data: dict[str, Any], names: list[str], locate: Callable[[KeyPath], Location], misfit: Misfit | None = None
) -> tuple[AssertionSpec, ...]:
    """One AssertionSpec per assertion and variant it applies to, in the order written.

    An assertion without ``variant`` applies to every variant its metric can measure
    (``misfit``): an answer metric skips retrieval-only variants.
    """
    out: list[AssertionSpec] = []
    items = data.get("assertions") or []
    plain = _plain_names(items)
    for index, item in enumerate(items):
        vs = item.get("vs")
        targets = [item["variant"]] if "variant" in item else [n for n in names if n != vs]
        if misfit is not None and "variant" not in item:
            targets = [n for n in targets if misfit(item["metric"], n, True) is None]
        location = locate(("assertions", index))
        key = item["metric"] if item["metric"] in plain else None
        out.extend(replace(_assertion(index, item, target, location), key=key) for target in targets)
    return tuple(out)


def _plain_names(items: list[dict[str, Any]]) -> set[str]:
    """Metrics used with one set of args only: their results go under the bare name."""
    seen: dict[str, set[str]] = {}
    for item in items:
        args = json.dumps(item.get("args") or {}, sort_keys=True, default=str)
        seen.setdefault(item["metric"], set()).add(args)
    return {name for name, variants in seen.items() if len(variants) == 1}


def _assertion(index: int, item: dict[str, Any], variant: str, location: Location) -> AssertionSpec:
    vs = item.get("vs")
    return AssertionSpec(
        index=index,
        metric=item["metric"],
        variant=variant,
        args=dict(item.get("args", {})),
        min=_float(item.get("min")),
        max=_float(item.get("max")),
        vs=vs,
        min_delta=float(item.get("min_delta", 0.0)) if vs is not None and "max_drop" not in item else None,
        max_drop=_float(item.get("max_drop")),
        confidence=_float(item.get("confidence")),
        regression=_regression(item.get("regression")),
        max_error_rate=float(item.get("max_error_rate", 0.0)),
        location=location,
    )


def _regression(value: Any) -> RegressionSpec | None:
    if value is None:
        return None
    return RegressionSpec(
        max_drop=float(value["max_drop"]),
        confidence=_float(value.get("confidence")),
        strict_identity=bool(value.get("strict_identity", False)),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
