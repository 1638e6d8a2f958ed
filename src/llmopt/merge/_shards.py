"""Reading the shards' results and refusing a set that cannot be merged honestly:
not shards, a shard missing or given twice, fingerprints that differ, a case in two
shards (or in a shard its id does not hash to)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..dataset._shard import Shard, shard_of
from ..errors import LLMOptError

__all__ = ["MergeRefused", "ShardFile", "check_cases", "check_fingerprints", "check_set", "read_shards"]


class MergeRefused(LLMOptError):
    """The shards given cannot be merged into one result (``llmopt merge`` exits 2)."""


@dataclass(frozen=True)
class ShardFile:
    """One shard's results JSON."""

    path: Path
    shard: Shard
    doc: Mapping[str, Any]

    @property
    def name(self) -> str:
        return f"shard {self.shard} ({self.path})"

    def scenarios(self) -> dict[tuple[str, str], Mapping[str, Any]]:
        """The scenarios of the shard by (spec, scenario id)."""
        return {(str(e["spec"]), str(e["scenario"])): e for e in self.doc.get("scenarios", [])}


def read_shards(paths: Sequence[Path]) -> list[ShardFile]:
    """Each file's shard; MergeRefused when one is unreadable or no shard's."""
    from ..report import ReportError, load_results

    shards = []
    for path in paths:
        try:
            doc = load_results(path)
        except ReportError as exc:
            raise MergeRefused(str(exc)) from None
        found = doc.get("shard")
        if not isinstance(found, Mapping) or not isinstance(found.get("k"), int) or not isinstance(found.get("n"), int):
            raise MergeRefused(f"{path}: not a shard's results (no shard field): write each with --llmopt-shard K/N")
        shards.append(ShardFile(path, Shard(found["k"], found["n"]), doc))
    return shards


def check_set(shards: Sequence[ShardFile]) -> list[ShardFile]:
    """The shards in order 1..N; MergeRefused unless each of 1/N .. N/N is given once."""
    if not shards:
        raise MergeRefused("no shard given")
    counts = sorted({s.shard.n for s in shards})
    if len(counts) > 1:
        shown = ", ".join(f"{s.path} is {s.shard}" for s in shards)
        raise MergeRefused(f"the shards split the cases differently ({shown})")
    n = counts[0]
    for k in range(1, n + 1):
        given = [s for s in shards if s.shard.k == k]
        if len(given) > 1:
            raise MergeRefused(f"shard {k}/{n} given twice: {', '.join(str(s.path) for s in given)}")
        if not given:
            raise MergeRefused(f"shard {k}/{n} missing: give all {n} shards' results (have {_have(shards)})")
    return sorted(shards, key=lambda s: s.shard.k)


def _have(shards: Sequence[ShardFile]) -> str:
    return ", ".join(str(s.shard) for s in sorted(shards, key=lambda s: s.shard.k))


def check_fingerprints(shards: Sequence[ShardFile]) -> None:
    """MergeRefused when two shards ran different scenarios, specs, llmopt versions,
    assertions or variant identities (the first difference, field by field)."""
    first = shards[0]
    mine = first.scenarios()
    for other in shards[1:]:
        theirs = other.scenarios()
        if set(mine) != set(theirs):
            only = sorted(set(mine) ^ set(theirs))
            raise MergeRefused(f"{first.name} and {other.name} hold different scenarios: {_keys(only)}")
        for key, entry in mine.items():
            _same(first, other, key, entry, theirs[key])


def _keys(keys: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{scenario} ({spec})" for spec, scenario in keys)


def _same(first: ShardFile, other: ShardFile, key: tuple[str, str], a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    """MergeRefused naming what differs between two shards' runs of one scenario."""
    fa, fb = a.get("fingerprint") or {}, b.get("fingerprint") or {}
    head = f"{first.name} and {other.name} are not shards of one run: scenario {key[1]} ({key[0]})"
    for field, what in (("llmopt", "llmopt version"), ("spec", "spec content"), ("assertions", "assertions")):
        if fa.get(field) != fb.get(field):
            raise MergeRefused(f"{head}: the {what} differs ({_brief(fa.get(field))} vs {_brief(fb.get(field))})")
    va, vb = fa.get("variants") or {}, fb.get("variants") or {}
    for name in sorted(set(va) & set(vb)):
        if va[name] != vb[name]:
            raise MergeRefused(f"{head}: variant {name} differs: {_changes(a, b, name)}")


def _brief(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} items"
    return str(value)[:23] if isinstance(value, str) and value.startswith("sha256:") else str(value)


def _changes(a: Mapping[str, Any], b: Mapping[str, Any], name: str) -> str:
    from ..engine.identity import identity_changes

    old, new = a["variants"][name].get("identity") or {}, b["variants"][name].get("identity") or {}
    return "; ".join(identity_changes(old, new)) or "identity hash"


def check_cases(shards: Sequence[ShardFile]) -> None:
    """MergeRefused when a case is in two shards, or in a shard its id does not hash to."""
    for key in shards[0].scenarios():
        variants = {name for s in shards for name in s.scenarios()[key].get("variants", {})}
        for name in sorted(variants):
            _check_variant_cases(shards, key, name)


def _check_variant_cases(shards: Sequence[ShardFile], key: tuple[str, str], name: str) -> None:
    seen: dict[str, ShardFile] = {}
    for s in shards:
        for case in s.scenarios()[key].get("variants", {}).get(name, {}).get("cases", []):
            case_id = str(case["id"])
            where = f"case {case_id!r} of {key[1]}::{name}"
            if case_id in seen and seen[case_id] is not s:
                raise MergeRefused(f"{where} is in two shards: {seen[case_id].name} and {s.name}")
            if shard_of(case_id, s.shard.n) != s.shard.k:
                raise MergeRefused(f"{where} is in {s.name}, but its id belongs to shard {shard_of(case_id, s.shard.n)}")
            seen[case_id] = s
