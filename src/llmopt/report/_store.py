"""The run's results in the JSON form of the contract, mergeable across workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..results import AssertionOutcome, VariantResult

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

    def add_variant(self, spec: str, result: VariantResult) -> None:
        variants = self._scenario(result.scenario, spec)["variants"]
        variants.setdefault(result.variant, result.to_json())

    def add_outcome(self, spec: str, outcome: AssertionOutcome) -> None:
        self._scenario(outcome.scenario, spec)["assertions"].append(outcome.to_json())

    def merge(self, doc: dict[str, Any]) -> None:
        """Merge a document produced by another process (an xdist worker)."""
        for entry in doc.get("scenarios", []):
            mine = self._scenario(entry["scenario"], entry["spec"])
            for name, variant in entry["variants"].items():
                mine["variants"].setdefault(name, variant)
            mine["assertions"].extend(entry["assertions"])

    def to_doc(self) -> dict[str, Any]:
        scenarios = sorted(self._scenarios.values(), key=lambda s: (s["spec"], s["scenario"]))
        for entry in scenarios:
            entry["assertions"].sort(key=lambda a: a["id"])
        return {"llmopt": FORMAT_VERSION, "scenarios": scenarios}

    def __bool__(self) -> bool:
        return bool(self._scenarios)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_doc(), indent=2, ensure_ascii=False, default=str)
        path.write_text(text + "\n", encoding="utf-8")
