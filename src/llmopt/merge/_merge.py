"""``llmopt merge``: the shards' results of one run become that run's results.

Each scenario's spec is loaded again (with its project's plugins and recipes, as every
command does) for its metrics and assertions; each variant is rebuilt from the union
of the shards' case records; every verdict is checked on it as the pytest item would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..errors import LLMOptError
from ._fingerprint import spec_digest, spec_file
from ._shards import MergeRefused, ShardFile, check_cases, check_fingerprints, check_set, read_shards

if TYPE_CHECKING:
    from ..engine.results import AssertionOutcome, VariantResult
    from ..registry import Registry
    from ..report import ResultsStore
    from ..spec import Scenario

__all__ = ["Merged", "merge_shards"]


@dataclass(frozen=True)
class Merged:
    """The merged run: its results store and document."""

    store: "ResultsStore"
    shards: int
    #: The registry of the first scenario's project (its report formats).
    registry: "Registry | None" = None

    def doc(self) -> dict[str, Any]:
        return self.store.to_doc() | {"merged": {"shards": self.shards}}

    def outcomes(self) -> list[str]:
        return [a["outcome"] for entry in self.store.to_doc()["scenarios"] for a in entry["assertions"]]

    @property
    def passed(self) -> bool:
        """Whether no assertion failed or errored."""
        return all(outcome in ("passed", "skipped") for outcome in self.outcomes())


def merge_shards(paths: Sequence[Path], root: Path, worst: int = 3) -> Merged:
    """Merge the shards' results JSON files; MergeRefused when they are not every
    shard of one run exactly once. ``root`` is the rootdir the shards ran in."""
    from ..report import ResultsStore

    shards = check_set(read_shards(paths))
    check_fingerprints(shards)
    check_cases(shards)
    store, root = ResultsStore(), root.resolve()
    registries = [_merge_scenario(store, shards, key, root, worst) for key in shards[0].scenarios()]
    return Merged(store, len(shards), registries[0] if registries else None)


def _display(root: Path) -> Callable[[Path], str]:
    """Paths as the pytest run showed them: relative to its rootdir."""

    def display(path: Path) -> str:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            return str(path)

    return display


def _merge_scenario(
    store: "ResultsStore", shards: Sequence[ShardFile], key: tuple[str, str], root: Path, worst: int
) -> "Registry":
    """Merge one scenario into ``store``; the registry of its project."""
    from ..baseline import Baselines
    from ._gate import Gating, gate

    spec, _ = key
    entries = [s.scenarios()[key] for s in shards]
    scenario, registry = _load(spec, entries[0], root)
    results = _variants(scenario, registry, entries)
    for result in results.values():
        store.add_variant(spec, result, order=list(scenario.variants))
    gating = Gating(scenario, registry.metrics, results, Baselines(_display(root)), worst)
    outcomes: list["AssertionOutcome"] = gate(gating, _shard_outcomes(entries))
    for outcome in outcomes:
        store.add_outcome(spec, outcome)
    return registry


def _load(spec: str, entry: Mapping[str, Any], root: Path) -> tuple["Scenario", "Registry"]:
    """The scenario of a shard's entry, loaded from its spec; MergeRefused when the
    spec is gone or changed since the shards ran."""
    from ..spec import load_scenario
    from ..spec._project import Project

    path = spec_file(spec, root)
    digest = spec_digest(path)
    if digest is None:
        raise MergeRefused(f"{spec}: spec not found under {root} (run llmopt merge where pytest ran, or give --rootdir)")
    if digest != (entry.get("fingerprint") or {}).get("spec"):
        raise MergeRefused(f"{spec}: the spec changed since the shards ran; run the shards again")
    display = _display(root)
    project = Project.of(path)
    try:
        registry = project.registry()
        scenario = load_scenario(path, registry, display_path=display(path), recipes=project.recipe_book(display))
    except LLMOptError as exc:
        raise MergeRefused(f"{spec}: {exc}") from None
    if scenario.id != entry["scenario"]:
        raise MergeRefused(f"{spec}: holds scenario {scenario.id!r}, the shards ran {entry['scenario']!r}")
    return scenario, registry


def _variants(scenario: "Scenario", registry: "Registry", entries: Sequence[Mapping[str, Any]]) -> dict[str, "VariantResult"]:
    """Each variant every shard evaluated, merged (in the spec's order)."""
    from ._union import merged_variant

    merged = {}
    for name in scenario.variants:
        parts = [e.get("variants", {}).get(name) for e in entries]
        if any(part is None for part in parts):
            continue  # a shard could not evaluate it: its items' errors say why
        metrics = {key: (registry.metrics[m], args) for key, (m, args) in scenario.metrics_for(name).items()}
        merged[name] = merged_variant(scenario.id, name, parts, metrics)
    return merged


def _shard_outcomes(entries: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Each assertion's node id -> its outcome in each shard, in shard order."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        for outcome in entry.get("assertions", []):
            found.setdefault(str(outcome["id"]), []).append(outcome)
    return found
