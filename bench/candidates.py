"""Generated prompt candidates on the embedded model: what each generator's winner is
worth on test, what it cost, and how far its dev score overstates it.

    python bench/candidates.py                          # both tasks, all four generators
    python bench/candidates.py --quick --tasks routing  # k [2] and 2 proposals: a fast check
    python bench/candidates.py --generators bootstrap,similar --keep /tmp/cands

Two tasks on provider `local` (SmolLM2-135M, in-process), each against its hand-written
recipe (variant `recipe`, which every search starts from and is confirmed against):

- routing: examples/ticket-routing (72 training tickets in data/train.csv, 48 dev and 48
  test tickets in data/dev.csv and data/test.csv), the recipe of specs/routing.yaml
  that names the four queues, objective `accuracy` over the four labels, max_tokens 8;
- extraction: bench/data/orders-search.jsonl (96 e-mails) split by id {train: 0.34,
  dev: 0.33, test: 0.33, seed: 3}, the recipe and model params of specs/extraction.yaml
  (max_tokens 48, stop at a blank line), objective `contains` on the expected order id
  (the metric and args of that spec's `contains` assertion).

Generators, one search each (strategy grid: every candidate on every dev case):
`random`, `bootstrap` and `similar` demonstrations (axis `demos`, k in [2, 4]), and
`instructions` (4 instructions proposed by the embedded model itself from the task and
the recipe's failures on the training cases; the instruction as written is a candidate
too). Each search is a spec written into one temporary project and run as
`python -m llmopt.cli search SPEC --json OUT` in a subprocess; all runs of one
invocation share that project's response cache, so the hand-written recipe's dev and
test answers are asked once (by the first run) and later runs read them back. Each
spec has its own scenario id, so each winner is the first look at its test split;
comparing generators by their test rows is a selection of its own (only each row's
confirmation is honest).

The table: candidates generated and tried on dev; `calls` = the model calls the run
reports (search usage plus the two confirmation variants, cache hits excluded) and
`hits` its cache hits; `made` = the answers the run added to the response cache,
counted independently (every local answer is cached, so this is every call it really
made; a `made` above `calls` means calls the usage left out); the winner; its dev
delta over the recipe (on all dev cases: grid); the confirmed test delta with its 95%
interval and p; whether the confirmation passed; and the gap (dev delta - test delta,
the winner's curse plus noise).

Exits 1 when a search errored (the command's exit status 2, a search-level `error`, a
candidate error other than a dropped proposal) or when the results JSON shows a test
case where selection could reach it: overlapping dev / test / train id lists in
`search.splits`, a demonstration id outside train, a candidate scored on more cases
than dev has, or a confirmation variant with a non-test case. The JSON does not list
the case ids each candidate was scored on, so beyond that the check trusts the
search's own dev-only evaluation (tests/test_search*.py cover it).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

ROOT = Path(__file__).resolve().parent.parent
ROUTING = ROOT / "examples" / "ticket-routing"
ORDERS = ROOT / "bench" / "data" / "orders-search.jsonl"
LABELS = ["billing", "login", "bug", "feature"]
GENERATORS = ("random", "bootstrap", "similar", "instructions")
TASKS = ("routing", "extraction")
#: How long to wait for a data file another change is still writing.
DATA_WAIT_S = 1800.0


@dataclass
class TaskSetup:
    """One task: the files copied into the project and the spec's fixed parts."""

    name: str
    files: dict[str, Path]
    task: dict[str, Any]
    recipe: dict[str, Any]
    model: dict[str, Any]
    objective: dict[str, Any]
    #: The scenario's description: what the instruction proposer is told the task is.
    description: str
    #: The training file's ids, when train is a file of its own (not a share of the split).
    train_ids: set[str] | None = None


@dataclass
class Row:
    task: str
    generator: str
    status: int = 0
    seconds: float = 0.0
    doc: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    #: Responses the run added to the cache: every model call it made (local answers are cached).
    new: int = 0


def _yaml() -> YAML:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    return yaml


def _read_spec(path: Path) -> dict[str, Any]:
    return dict(YAML(typ="safe").load(path.read_text(encoding="utf-8")))


def _hand_written(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's `recipe` variant's recipe (the top level's, with the variant's overrides)."""
    recipe = dict(spec["recipe"])
    override = ((spec.get("variants") or {}).get("recipe") or {}).get("recipe") or {}
    recipe.update(override)
    return recipe


def routing_setup() -> TaskSetup:
    spec = _read_spec(ROUTING / "specs" / "routing.yaml")
    data = ROUTING / "data"
    return TaskSetup(
        name="routing",
        files={name: data / name for name in ("train.csv", "dev.csv", "test.csv")},
        task={"dev_dataset": "../data/dev.csv", "test_dataset": "../data/test.csv", "train": "../data/train.csv",
              "id": "id", "expected": "category", "input": "ticket"},
        recipe=_hand_written(spec),
        model={"provider": "local", "params": dict(spec["model"]["params"])},
        objective={"metric": "accuracy", "args": {"labels": list(LABELS)}},
        description="Route a customer support ticket to its queue: billing, login, bug or feature.",
        train_ids=_csv_ids(data / "train.csv"),
    )


def _csv_ids(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["id"] for row in csv.DictReader(handle)}


def extraction_setup() -> TaskSetup:
    spec = _read_spec(ROOT / "specs" / "extraction.yaml")
    contains = next(a for a in spec["assertions"] if a["metric"] == "contains")
    objective: dict[str, Any] = {"metric": "contains"}
    if contains.get("args"):
        objective["args"] = dict(contains["args"])
    return TaskSetup(
        name="extraction",
        files={"orders.jsonl": ORDERS},
        task={"dataset": "../data/orders.jsonl", "id": "id", "expected": "order_id", "input": "email",
              "split": {"train": 0.34, "dev": 0.33, "test": 0.33, "seed": 3}},
        recipe=_hand_written(spec),
        model={"provider": "local", "params": dict(spec["model"]["params"])},
        objective=objective,
        description="Pull the order id, the customer's name and the quantity out of a customer e-mail, as JSON.",
    )


def axes(generator: str, quick: bool) -> dict[str, Any]:
    ks = [2] if quick else [2, 4]
    if generator in ("random", "bootstrap", "similar"):
        return {"demos": {"k": ks, "select": [generator]}}
    return {"instructions": {"propose": 2 if quick else 4, "proposer": {"provider": "local"},
                             "from": ["task", "failures"], "seed": 0, "sample": 8}}


def spec_doc(setup: TaskSetup, generator: str, quick: bool) -> dict[str, Any]:
    recipe = {k: LiteralScalarString(v) if isinstance(v, str) and "\n" in v else v for k, v in setup.recipe.items()}
    return {
        "llmopt": 1,
        "scenario": f"{setup.name}-{generator}",
        "description": setup.description,  # the proposer reads it as the task's description
        "task": setup.task,
        "recipe": recipe,
        "model": setup.model,
        "variants": {"recipe": {}},
        "search": {
            "from": "recipe",
            "axes": axes(generator, quick),
            "objective": setup.objective,
            "strategy": "grid",
            "confirm": {"vs": "recipe", "confidence": 0.95},
        },
    }


def wait_for(paths: list[Path], timeout: float = DATA_WAIT_S) -> None:
    """Wait (polling) for data files that may still be being written."""
    deadline = time.monotonic() + timeout
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"waiting for {', '.join(str(p.relative_to(ROOT)) for p in missing)} ...", flush=True)
    while missing:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench/candidates.py: missing data files: {', '.join(map(str, missing))}")
        time.sleep(15)
        missing = [p for p in paths if not p.is_file()]


def make_project(folder: Path, setups: list[TaskSetup]) -> None:
    (folder / "specs").mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)
    (folder / "pyproject.toml").write_text('[tool.pytest.ini_options]\nllmopt_cache_dir = ".llmopt/cache"\n',
                                           encoding="utf-8")
    for setup in setups:
        data = folder / "data"
        data.mkdir(exist_ok=True)
        for name, source in setup.files.items():
            shutil.copyfile(source, data / name)


def run_one(folder: Path, setup: TaskSetup, generator: str, quick: bool) -> Row:
    name = f"{setup.name}-{generator}"
    spec = folder / "specs" / f"{name}.yaml"
    out = folder / "out" / f"{name}.json"
    out.unlink(missing_ok=True)
    with spec.open("w", encoding="utf-8") as handle:
        _yaml().dump(spec_doc(setup, generator, quick), handle)
    before = cached_responses(folder)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    with (folder / "out" / f"{name}.log").open("w", encoding="utf-8") as log:
        done = subprocess.run([sys.executable, "-m", "llmopt.cli", "search", str(spec), "--json", str(out)],
                              cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    row = Row(setup.name, generator, done.returncode, time.perf_counter() - started)
    row.new = cached_responses(folder) - before
    if out.is_file():
        row.doc = json.loads(out.read_text(encoding="utf-8"))
    check(row, setup, folder / "out" / f"{name}.log")
    return row


def cached_responses(folder: Path) -> int:
    """How many answers the project's response cache holds."""
    path = folder / ".llmopt" / "cache" / "responses.sqlite3"
    if not path.is_file():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM responses").fetchone()[0])


def _search(row: Row) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if row.doc is None or not row.doc.get("scenarios"):
        return None
    scenario = row.doc["scenarios"][0]
    return scenario, scenario.get("search") or {}


def check(row: Row, setup: TaskSetup, log: Path) -> None:
    """Errors and anything that shows a test case reachable by the selection."""
    found = _search(row)
    if row.status == 2 or found is None:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        row.problems.append(f"exit {row.status}: " + " | ".join(tail))
    if found is None:
        return
    scenario, search = found
    if search.get("error"):
        row.problems.append(f"search error: {search['error']}")
    splits = search.get("splits") or {}
    ids = {part: set((splits.get(part) or {}).get("ids") or ()) for part in ("dev", "test", "train")}
    if not ids["train"] and setup.train_ids is not None:  # task.train: a file of its own
        ids["train"] = set(setup.train_ids)
    for a, b in (("dev", "test"), ("train", "dev"), ("train", "test")):
        if ids[a] & ids[b]:
            row.problems.append(f"{a} and {b} share ids {sorted(ids[a] & ids[b])[:5]}")
    for cand in search.get("candidates") or ():
        error = cand.get("error")
        if error and not str(error).startswith("not evaluated: proposal"):
            row.problems.append(f"candidate {cand['name']}: {error}")
        shown = set(((cand.get("generated") or {}).get("demo_ids")) or ())
        if shown - ids["train"]:
            row.problems.append(f"candidate {cand['name']} shows non-training demonstrations {sorted(shown - ids['train'])[:5]}")
        if any(r.get("n", 0) > len(ids["dev"]) for r in cand.get("rounds") or ()):
            row.problems.append(f"candidate {cand['name']} was scored on more cases than dev has")
    for variant, result in (scenario.get("variants") or {}).items():
        outside = {c["id"] for c in result.get("cases") or ()} - ids["test"]
        if outside:
            row.problems.append(f"confirmation variant {variant} ran on non-test cases {sorted(outside)[:5]}")


# -- the table ---------------------------------------------------------------------

def _num(value: Any, fmt: str = "+.3f") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) and not math.isnan(value) else "-"


def _p(value: Any) -> str:
    if isinstance(value, (int, float)) and not math.isnan(value) and value < 0.001:
        return "<0.001"
    return _num(value, ".3f")


def _winner_label(winner: dict[str, Any]) -> str:
    levels = winner.get("levels") or {}
    parts = []
    for path, text in levels.items():
        if path == "demos":
            try:
                parts.append(f"k={json.loads(text)['k']}")
            except (ValueError, KeyError, TypeError):
                parts.append(str(text))
        else:
            parts.append(str(text))
    return f"{winner['name']} {' '.join(parts)}".strip()


def table_row(row: Row) -> list[str]:
    found = _search(row)
    if found is None:
        return [row.task, row.generator] + ["-"] * 11 + [f"ERROR ({row.seconds:.0f} s)"]
    scenario, search = found
    generated = search.get("generated") or {}
    usage = search.get("usage") or {}
    calls, hits = int(usage.get("calls") or 0), int(usage.get("cache_hits") or 0)
    for result in (scenario.get("variants") or {}).values():
        calls += int((result.get("usage") or {}).get("calls") or 0)
        hits += int((result.get("usage") or {}).get("cache_hits") or 0)
    winner = search.get("winner") or {}
    dev = winner.get("dev") or {}
    conf = search.get("confirmation") or {}
    ci = conf.get("ci")
    test = f"{_num(conf.get('delta'))} [{_num(ci[0])}, {_num(ci[1])}]" if ci else _num(conf.get("delta"))
    gap = (dev["delta"] - conf["delta"]) if isinstance(dev.get("delta"), (int, float)) and isinstance(
        conf.get("delta"), (int, float)) else math.nan
    confirmed = {"passed": "yes", "failed": "no"}.get(str(conf.get("outcome")), str(conf.get("outcome") or "-"))
    return [row.task, row.generator, str(generated.get("candidates", "-")), str(generated.get("tried", "-")),
            str(calls), str(hits), str(row.new), _winner_label(winner) if winner else "-", _num(dev.get("delta")), test,
            _p(conf.get("p")), confirmed, _num(gap), f"{row.seconds:.0f} s"]


HEADER = ["task", "generator", "gen", "tried", "calls", "hits", "made", "winner", "dev delta", "test delta [95% CI]", "p",
          "confirmed", "gap", "time"]


def print_table(rows: list[Row]) -> None:
    lines = [HEADER] + [table_row(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def split_line(rows: list[Row], setup: TaskSetup) -> str | None:
    for row in rows:
        found = _search(row)
        if row.task == setup.name and found is not None:
            search = found[1]
            splits = search.get("splits") or {}
            train = len(setup.train_ids) if setup.train_ids is not None else (splits.get("train") or {}).get("n")
            objective = search.get("objective") or {}
            recipe: dict[str, Any] = (found[0].get("variants") or {}).get("recipe") or {}
            value = ((recipe.get("metrics") or {}).get(objective.get("key") or "") or {}).get("value")
            return (f"{setup.name}: train {train}, dev {(splits.get('dev') or {}).get('n')}, "
                    f"test {(splits.get('test') or {}).get('n')} cases; objective {objective.get('key')}; "
                    f"hand-written recipe on test {_num(value, '.3f')}")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)} (default: both)")
    parser.add_argument("--generators", default=",".join(GENERATORS),
                        help=f"comma-separated, of {', '.join(GENERATORS)} (default: all)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the project in DIR and keep it (specs, results JSON, logs, cache; a rerun "
                        "in the same DIR answers from its cache)")
    parser.add_argument("--quick", action="store_true", help="k [2] only and 2 proposals: a fast check")
    options = parser.parse_args()
    tasks = [t for t in options.tasks.split(",") if t]
    generators = [g for g in options.generators.split(",") if g]
    unknown = [t for t in tasks if t not in TASKS] + [g for g in generators if g not in GENERATORS]
    if unknown:
        parser.error(f"unknown task or generator: {', '.join(unknown)}")

    started = time.perf_counter()
    if "routing" in tasks:
        wait_for([ROUTING / "data" / "dev.csv", ROUTING / "data" / "test.csv"])
    if "extraction" in tasks:
        wait_for([ORDERS])
    setups = [{"routing": routing_setup, "extraction": extraction_setup}[t]() for t in tasks]
    folder = options.keep.resolve() if options.keep else Path(tempfile.mkdtemp(prefix="llmopt-bench-candidates-"))
    rows: list[Row] = []
    try:
        make_project(folder, setups)
        for setup in setups:
            for generator in generators:
                print(f"{setup.name} / {generator} ...", end=" ", flush=True)
                row = run_one(folder, setup, generator, options.quick)
                print(f"{row.seconds:.0f} s, exit {row.status}", flush=True)
                rows.append(row)
    finally:
        if options.keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    mode = "quick: k [2], 2 proposals" if options.quick else "k [2, 4], 4 proposals"
    print(f"\ngenerated candidates against the hand-written recipe on the embedded model ({mode}; grid; "
          f"confirm: paired delta > 0 at 95% on test)")
    for setup in setups:
        line = split_line(rows, setup)
        if line:
            print(line)
    print_table(rows)
    problems = [f"{r.task}/{r.generator}: {p}" for r in rows for p in r.problems]
    for line in problems[:20]:
        print("PROBLEM", line)
    print(f"took {time.perf_counter() - started:.0f} s" + (f"; project kept in {folder}" if options.keep else ""))
    if problems:
        print(f"FAILED: {len(problems)} problem(s): a search errored or selection could reach a test case")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
