"""The run's results in the JSON form of the contract, mergeable across workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..engine.results import AssertionOutcome, Usage, VariantResult

FORMAT_VERSION = 1


class ResultsStore:
    """Collects variant results and assertion outcomes per scenario, in run order."""

    def __init__(self) -> None:
        self._scenarios: dict[str, dict[str, Any]] = {}

    def _scenario(self, scenario: str, spec: str) -> dict[str, Any]:
        key = f"{spec}::{scenario}"
        if key not in self._scenarios:
            self._scenarios[key] = {"scenario": scenario, "spec": spec, "variants": {}, "assertions": []}
        return self._scenarios[key]

    def add_variant(self, spec: str, result: VariantResult, order: Sequence[str] = ()) -> None:
        """Record a variant's result (each metric says whether higher is better);
        ``order`` lists the scenario's variants as written."""
        entry = self._scenario(result.scenario, spec)
        if result.variant not in entry["variants"]:
            entry["variants"][result.variant] = result.to_json()
        if order:
            entry["order"] = list(order)

    def _ordered(self, entry: dict[str, Any]) -> dict[str, Any]:
        order = {name: i for i, name in enumerate(entry.get("order", ()))}
        variants = sorted(entry["variants"].items(), key=lambda kv: order.get(kv[0], len(order)))
        return {key: value for key, value in entry.items() if key != "order"} | {"variants": dict(variants)}

    def add_outcome(self, spec: str, outcome: AssertionOutcome) -> None:
        self._scenario(outcome.scenario, spec)["assertions"].append(outcome.to_json())

    def merge(self, doc: dict[str, Any]) -> None:
        """Merge a document produced by another process (an xdist worker)."""
        for entry in doc.get("scenarios", []):
            mine = self._scenario(entry["scenario"], entry["spec"])
            for name, variant in entry["variants"].items():
                mine["variants"].setdefault(name, variant)
            mine["assertions"].extend(entry["assertions"])
            if "order" in entry:
                mine["order"] = entry["order"]

    def to_doc(self) -> dict[str, Any]:
        scenarios = sorted(self._scenarios.values(), key=lambda s: (s["spec"], s["scenario"]))
        for entry in scenarios:
            entry["assertions"].sort(key=lambda a: a["id"])
        return {"llmopt": FORMAT_VERSION, "scenarios": [self._ordered(entry) for entry in scenarios]}

    def to_worker_doc(self) -> dict[str, Any]:
        """Like :meth:`to_doc`, keeping the variant order for the controller's merge."""
        return {"llmopt": FORMAT_VERSION, "scenarios": list(self._scenarios.values())}

    def usage_total(self) -> Usage:
        """The usage of every variant recorded (merged workers' included): the model
        under test's calls, and those of judges and of retrieval (embeddings)."""
        total = Usage()
        for entry in self._scenarios.values():
            for variant in entry["variants"].values():
                for part in ("usage", "judge_usage", "retrieval_usage"):
                    if variant.get(part):
                        total = total + Usage(**variant[part])
        return total

    def __bool__(self) -> bool:
        return bool(self._scenarios)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_doc(), indent=2, ensure_ascii=False, default=str)
        path.write_text(text + "\n", encoding="utf-8")
