"""The run's results in the JSON form of the contract, mergeable across workers.

The store keeps each variant's cases as the runner made them (its ``CaseResult``
objects, not a second copy as dicts): a variant's ``cases`` is a :class:`CaseRecords`
view that makes each record when it is read, and :func:`write_results` streams them
to the file one line each, so a 100,000-case run never holds its results twice nor
the whole text of the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Sequence, overload

from ..engine.results import AssertionOutcome, CaseResult, Usage, VariantResult

FORMAT_VERSION = 1
#: Bytes buffered before each write to the results file.
_BUFFER = 1 << 20


class CaseRecords(Sequence[dict[str, Any]]):
    """A variant's case records in the results JSON form, each made from its
    ``CaseResult`` when read: a read-only sequence of dicts (equal to the list of them)."""

    __slots__ = ("_cases",)

    def __init__(self, cases: Sequence[CaseResult]) -> None:
        self._cases = cases

    def __len__(self) -> int:
        return len(self._cases)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [case.to_json() for case in self._cases[index]]
        return self._cases[index].to_json()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (case.to_json() for case in self._cases)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CaseRecords):
            other = list(other)
        if not isinstance(other, (list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CaseRecords({len(self)} cases)"

    def texts(self) -> Iterator[str]:
        """Each record as one line of JSON."""
        return (case.to_json_text() for case in self._cases)


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
            entry["variants"][result.variant] = result.header_json() | {"cases": CaseRecords(result.cases)}
        if order:
            entry["order"] = list(order)

    def _ordered(self, entry: dict[str, Any]) -> dict[str, Any]:
        order = {name: i for i, name in enumerate(entry.get("order", ()))}
        variants = sorted(entry["variants"].items(), key=lambda kv: order.get(kv[0], len(order)))
        return {key: value for key, value in entry.items() if key != "order"} | {"variants": dict(variants)}

    def add_search(self, spec: str, scenario: str, search: dict[str, Any]) -> None:
        """Record a scenario's search (``scenarios[].search``)."""
        self._scenario(scenario, spec)["search"] = search

    def set_confirmation(self, spec: str, scenario: str, confirmation: dict[str, Any]) -> None:
        """Record the confirmation of a scenario's search winner on test."""
        entry = self._scenario(scenario, spec)
        if entry.get("search") is not None:
            entry["search"]["confirmation"] = confirmation

    def add_outcome(self, spec: str, outcome: AssertionOutcome) -> None:
        self._scenario(outcome.scenario, spec)["assertions"].append(outcome.to_json())

    def merge(self, doc: dict[str, Any]) -> None:
        """Merge a document produced by another process (an xdist worker)."""
        for entry in doc.get("scenarios", []):
            mine = self._scenario(entry["scenario"], entry["spec"])
            for name, variant in entry["variants"].items():
                mine["variants"].setdefault(name, variant)
            mine["assertions"].extend(entry["assertions"])
            if entry.get("search") is not None:
                mine["search"] = entry["search"]
            if "order" in entry:
                mine["order"] = entry["order"]

    def to_doc(self) -> dict[str, Any]:
        scenarios = sorted(self._scenarios.values(), key=lambda s: (s["spec"], s["scenario"]))
        for entry in scenarios:
            entry["assertions"].sort(key=lambda a: a["id"])
        return {"llmopt": FORMAT_VERSION, "scenarios": [self._ordered(entry) for entry in scenarios]}

    def to_worker_doc(self) -> dict[str, Any]:
        """Like :meth:`to_doc`, keeping the variant order for the controller's merge;
        plain data (the case records made), for ``json.dumps``."""
        return {"llmopt": FORMAT_VERSION, "scenarios": [plain(entry) for entry in self._scenarios.values()]}

    def usage_total(self) -> Usage:
        """The usage of every variant recorded (merged workers' included): the model
        under test's calls, and those of judges and of retrieval (embeddings)."""
        total = Usage()
        for entry in self._scenarios.values():
            for variant in entry["variants"].values():
                for part in ("usage", "judge_usage", "retrieval_usage", "demos_usage"):
                    if variant.get(part):
                        total = total + Usage(**variant[part])
            total = total + _search_usage(entry.get("search"))
        return total

    def __bool__(self) -> bool:
        return bool(self._scenarios)

    def write(self, path: Path, doc: Mapping[str, Any] | None = None) -> None:
        """Write the results JSON (``doc``: this store's, with what the caller added)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_results(self.to_doc() if doc is None else doc, path)


def plain(value: Any) -> Any:
    """``value`` with every :class:`CaseRecords` in it made a list of dicts (the
    containers holding one copied, the rest shared)."""
    if isinstance(value, CaseRecords):
        return list(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def write_results(doc: Mapping[str, Any], path: Path) -> None:
    """Write a results document as JSON: indented as ``json.dumps(indent=2)`` does,
    except that each case record is one line; the records are encoded one at a time
    (by the C encoder), so the text of the whole file is never in memory."""
    with path.open("w", encoding="utf-8", buffering=_BUFFER) as out:
        _emit(out, doc, 0)
        out.write("\n")


def _emit(out: IO[str], value: Any, depth: int, key: str | None = None) -> None:
    """Write ``value`` at nesting ``depth``; a list under the key ``cases`` one item a line."""
    inner = "\n" + "  " * (depth + 1)
    if isinstance(value, CaseRecords) and not value:
        out.write("[]")
    elif key == "cases" and isinstance(value, (CaseRecords, list, tuple)) and value:
        texts = value.texts() if isinstance(value, CaseRecords) else (_dumps(record) for record in value)
        out.write("[" + inner)
        out.writelines(_joined(texts, "," + inner))
        out.write("\n" + "  " * depth + "]")
    elif isinstance(value, dict) and value:
        out.write("{")
        for i, (name, item) in enumerate(value.items()):
            out.write(("," if i else "") + inner + _dumps(_key(name)) + ": ")
            _emit(out, item, depth + 1, name if isinstance(name, str) else None)
        out.write("\n" + "  " * depth + "}")
    elif isinstance(value, (list, tuple, CaseRecords)) and value:  # records under another key: as json does
        out.write("[")
        for i, item in enumerate(value):
            out.write(("," if i else "") + inner)
            _emit(out, item, depth + 1)
        out.write("\n" + "  " * depth + "]")
    else:
        out.write(_dumps(value))


def _joined(texts: Iterator[str], separator: str) -> Iterator[str]:
    """``texts`` with ``separator`` between them."""
    for i, text in enumerate(texts):
        yield separator + text if i else text


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _key(name: Any) -> str:
    """A mapping key as ``json.dumps`` writes it: a string, or the JSON of a number,
    boolean or None (TypeError otherwise, as there)."""
    if isinstance(name, str):
        return name
    if name is None or isinstance(name, (bool, int, float)):
        return json.dumps(name)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(name).__name__}")


def _search_usage(search: dict[str, Any] | None) -> Usage:
    """What a scenario's search spent on dev (its calls are not any variant's)."""
    if not search or not search.get("usage"):
        return Usage()
    used = search["usage"]
    return Usage(
        input_tokens=int(used.get("input_tokens", 0)),
        output_tokens=int(used.get("output_tokens", 0)),
        cost_usd=float(used.get("cost_usd", 0.0)),
        cache_hits=int(used.get("cache_hits", 0)),
        calls=int(used.get("calls", 0)),
    )
