"""Stored baselines: ``baselines/<scenario>.json`` beside the spec, meant to be committed.

``--llmopt-update-baseline`` writes one file per scenario (per variant: identity, metrics
and per-case scores) in a stable form (sorted keys, indented, rounded floats), so a
review shows what moved. A ``regression`` assertion pairs the variant's cases with the
stored ones by id; a baseline measured with another identity is named field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .errors import LLMOptError

if TYPE_CHECKING:
    from .engine.results import VariantResult
    from .spec import AssertionSpec, Scenario

FORMAT_VERSION = 1
#: Digits kept of every float in a baseline file (stable diffs, no float noise).
DIGITS = 6
FOLDER = "baselines"


class BaselineMissing(LLMOptError):
    """The stored baseline a regression assertion needs does not exist (or lacks the variant)."""


class IdentityMismatch(LLMOptError):
    """``strict_identity``: the stored baseline was measured with another identity."""


class IdentityWarning(UserWarning):
    """A stored baseline was measured with another identity than this run."""


@dataclass(frozen=True)
class StoredVariant:
    """One variant of a stored baseline, as a regression assertion reads it."""

    path: str
    identity: Mapping[str, Any]
    identity_hash: str | None
    #: case id -> metric key -> score
    scores: Mapping[str, Mapping[str, float]]
    #: ``key: old -> new`` for every identity field that differs from this run.
    changed: tuple[str, ...] = field(default=())


def baseline_path(spec_path: Path, scenario: str) -> Path:
    """Where the baseline of ``scenario`` (written in the spec at ``spec_path``) lives."""
    return spec_path.parent / FOLDER / f"{scenario}.json"


def read_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline document at ``path``; None when there is none."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LLMOptError(f"{path}: not a readable baseline file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("llmopt_baseline") != FORMAT_VERSION:
        raise LLMOptError(f"{path}: not an llmopt baseline (format {FORMAT_VERSION})")
    return doc


def stored_variant(doc: Mapping[str, Any] | None, variant: str, metric_key: str, shown: str, command: str) -> StoredVariant:
    """The stored ``variant`` with scores of ``metric_key``; BaselineMissing otherwise,
    naming ``command``, which creates it."""
    entry = (doc or {}).get("variants", {}).get(variant)
    if doc is None:
        raise BaselineMissing(f"no stored baseline: {shown} does not exist; create it with: {command}")
    if entry is None:
        raise BaselineMissing(f"{shown} has no variant {variant!r}; add it with: {command}")
    if metric_key not in entry.get("metrics", {}):
        raise BaselineMissing(f"{shown} has no metric {metric_key!r} for variant {variant!r}; update it with: {command}")
    scores = {case_id: dict(values) for case_id, values in entry.get("cases", {}).items()}
    return StoredVariant(shown, dict(entry.get("identity", {})), entry.get("identity_hash"), scores)


def compare_identity(stored: StoredVariant, current: Mapping[str, Any], metric_key: str) -> StoredVariant:
    """``stored`` with the identity fields that differ from ``current``: the metric
    list may grow, but the checked metric's own arguments must match."""
    from .engine.identity import identity_changes

    old = {k: v for k, v in stored.identity.items() if k != "metrics"}
    new = {k: v for k, v in current.items() if k != "metrics"}
    changed = identity_changes(old, new)
    was = stored.identity.get("metrics", {}).get(metric_key)
    now = current.get("metrics", {}).get(metric_key)
    if was is not None and was != now:
        changed += identity_changes({f"metric {metric_key}": was}, {f"metric {metric_key}": now})
    return StoredVariant(stored.path, stored.identity, stored.identity_hash, stored.scores, tuple(changed))


def variant_entry(variant: Mapping[str, Any]) -> dict[str, Any]:
    """A variant of the results JSON as stored in a baseline."""
    return {
        "identity": variant.get("identity", {}),
        "identity_hash": variant.get("identity_hash"),
        "n": variant.get("n"),
        "errors": variant.get("errors"),
        "metrics": {
            key: {k: m.get(k) for k in ("value", "n", "ci", "se", "method") if k in m}
            for key, m in variant.get("metrics", {}).items()
        },
        "cases": {c["id"]: dict(c["scores"]) for c in variant.get("cases", []) if c.get("error") is None},
    }


def baseline_doc(scenario: Mapping[str, Any], spec_name: str, existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The baseline of a scenario of the results JSON; variants this run did not
    measure keep their stored entry."""
    variants = dict((existing or {}).get("variants", {}))
    variants.update({name: variant_entry(v) for name, v in scenario["variants"].items()})
    return {"llmopt_baseline": FORMAT_VERSION, "scenario": scenario["scenario"], "spec": spec_name, "variants": variants}


def render(doc: Mapping[str, Any]) -> str:
    """The stable text of a baseline: sorted keys, two-space indent, rounded floats."""
    return json.dumps(_rounded(doc), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DIGITS)
    if isinstance(value, Mapping):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def write_baselines(doc: Mapping[str, Any], root: Path) -> list[Path]:
    """Write the baseline of every scenario of a results document; ``root`` resolves
    the specs' paths. Returns the files written."""
    written: list[Path] = []
    for scenario in doc.get("scenarios", []):
        if not scenario.get("variants"):
            continue
        spec = Path(scenario["spec"])
        spec = spec if spec.is_absolute() else root / spec
        path = baseline_path(spec, scenario["scenario"])
        text = render(baseline_doc(scenario, spec.name, read_baseline(path)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


class Baselines:
    """The stored baselines of a run, each file read once.

    Under ``update`` (``--llmopt-update-baseline``) a variant's own result is its
    baseline: the run that writes a baseline compares with what it writes.
    """

    def __init__(self, display: Callable[[Path], str], update: bool = False) -> None:
        self.display = display
        self.update = update
        self._docs: dict[Path, Any] = {}

    def stored(self, scenario: "Scenario", assertion: "AssertionSpec", result: "VariantResult") -> StoredVariant:
        """The stored baseline a regression assertion compares with; warns, or with
        strict_identity raises IdentityMismatch, when it was measured with another
        identity."""
        path = baseline_path(scenario.path, scenario.id)
        command = f"pytest {self.display(scenario.path)} --llmopt-update-baseline"
        doc = self._doc(path, result)
        found = stored_variant(doc, assertion.variant, assertion.metric_key, self.display(path), command)
        found = compare_identity(found, result.identity, assertion.metric_key)
        if found.changed:
            identity_changed(scenario, assertion, found, command)
        return found

    def _doc(self, path: Path, result: "VariantResult") -> Any:
        if self.update:
            return {"variants": {result.variant: variant_entry(result.to_json())}}
        if path not in self._docs:
            self._docs[path] = read_baseline(path)
        return self._docs[path]


def identity_changed(scenario: "Scenario", assertion: "AssertionSpec", found: StoredVariant, command: str) -> None:
    """Warn (an IdentityWarning at the assertion's line) that a baseline was measured
    with another identity; IdentityMismatch under strict_identity."""
    import warnings

    what = "; ".join(found.changed)
    strict = scenario.strict_identity or (assertion.regression is not None and assertion.regression.strict_identity)
    head = f"the stored baseline of {scenario.id}::{assertion.variant} ({found.path}) was measured with another identity"
    if strict:
        raise IdentityMismatch(f"{head} (strict_identity): {what}; if the change is meant, update it with: {command}")
    location = assertion.location
    where = location.path if location is not None else str(scenario.path)
    line = location.line if location is not None and location.line else 1
    warnings.warn_explicit(IdentityWarning(f"{head}: {what}"), IdentityWarning, where, line)
