"""``llmopt merge``: N shards of a run merge into exactly the unsharded run's results
(values, intervals, p-values, Holm's adjustment, power, the stored baseline's verdict),
and every set of files that is not one run's shards is refused with exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmopt.cli import main
from llmopt.dataset._shard import shard_of
from llmopt.report import summary_lines

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

#: 120 cases: the plain echo answer matches the first 90.
ROWS = [{"id": f"c{i:03d}", "question": f"q{i}", "answer": f"q{i}" if i < 90 else "other"} for i in range(120)]

SPEC = """\
llmopt: 1
scenario: scale
correction: holm
task:
  dataset: ../data/cases.jsonl
  id: id
  expected: answer
recipe:
  template: "{{ question }}"
model:
  provider: python
  id: agent.py:answer
  options: {cache: true}
variants:
  baseline: {recipe: {template: "{{ question if question[-1] in '0123' else 'no' }}"}}
  half: {recipe: {template: "{{ question if question[-1] in '012345' else 'no' }}"}}
  tuned: {}
assertions:
  - metric: exact_match
    variant: tuned
    min: 0.6
    confidence: 0.9
  - metric: exact_match
    variant: tuned
    vs: baseline
    min_delta: 0.2
    confidence: 0.95
  - metric: exact_match
    variant: half
    vs: baseline
    min_delta: 0.05
    confidence: 0.95
  - metric: exact_match
    variant: tuned
    vs: half
    min_delta: 0.3
    confidence: 0.95
  - metric: exact_match
    variant: tuned
    regression: {max_drop: 0.1, confidence: 0.95}
  - metric: latency_p95
    variant: tuned
    max: 5.0
"""
ITEMS = 6
#: The terminal width of every run and merge here, so their summary tables compare.
WIDTH = "250"


def _pytest(folder: Path, *args: str) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "specs", "-p", "no:cacheprovider", "-rs", *args],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ | {"COLUMNS": WIDTH},
    )


def _wait(*runs: "subprocess.Popen[str]") -> list[str]:
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    for run, out in zip(runs, outputs, strict=True):
        assert run.returncode in (0, 1), out
    return outputs


def _write_project(folder: Path, spec: str = SPEC) -> None:
    (folder / "specs").mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\nllmopt_cache_dir = .cache-llmopt\n", encoding="utf-8")
    (folder / "data" / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    (folder / "specs" / "agent.py").write_text("def answer(prompt):\n    return prompt\n", encoding="utf-8")
    (folder / "specs" / "scale.yaml").write_text(spec, encoding="utf-8")


def _shard_runs(folder: Path, n: int, prefix: str = "shard") -> list["subprocess.Popen[str]"]:
    return [_pytest(folder, f"--llmopt-shard={k}/{n}", f"--llmopt-json={prefix}-{k}.json") for k in range(1, n + 1)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project run once as a whole (results whole.json, its output whole.txt) and as
    four shards (shard-K.json, outputs shard-K.txt), every answer from the cache and
    against a stored baseline in which tuned answered ten more cases right."""
    folder = tmp_path_factory.mktemp("sharded")
    _write_project(folder)
    _wait(_pytest(folder, "--llmopt-update-baseline"))  # and every answer is cached now
    _plant_regression(folder / "specs" / "baselines" / "scale.json")
    (whole,) = _wait(_pytest(folder, "--llmopt-json=whole.json"))
    (folder / "whole.txt").write_text(whole, encoding="utf-8")
    for k, out in enumerate(_wait(*_shard_runs(folder, 4)), start=1):
        (folder / f"shard-{k}.txt").write_text(out, encoding="utf-8")
    return folder


def _plant_regression(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for case_id in [f"c{i:03d}" for i in range(90, 100)]:
        doc["variants"]["tuned"]["cases"][case_id]["exact_match"] = 1.0
    path.write_text(json.dumps(doc), encoding="utf-8")


@pytest.fixture
def runs(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the built project, as the current folder."""
    folder = tmp_path / "project"
    shutil.copytree(built, folder)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("COLUMNS", WIDTH)
    return folder


def _load(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _merge(*args: str) -> int:
    return main(["merge", *args])


SHARDS = [f"shard-{k}.json" for k in range(1, 5)]
def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """What a merge must reproduce exactly: every variant's identity, metrics and
    cases (without what a rerun changes: usage, duration), every assertion."""
    (entry,) = doc["scenarios"]
    variants = {
        name: {
            "identity_hash": v["identity_hash"], "identity": v["identity"], "n": v["n"], "errors": v["errors"],
            "metrics": v["metrics"], "flaky": v["flaky"],
            "cases": [{k: c.get(k) for k in ("id", "input", "expected", "output", "scores", "latencies_s", "error")} for c in v["cases"]],
        }
        for name, v in entry["variants"].items()
    }
    return {"variants": variants, "assertions": entry["assertions"]}


def test_four_shards_merge_into_exactly_the_unsharded_run(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = [_load(runs, s)["scenarios"][0]["variants"]["tuned"]["n"] for s in SHARDS]
    assert sum(sizes) == 120 and all(0 < size < 120 for size in sizes)
    assert _merge(*SHARDS, "-o", "merged.json", "--junitxml", "junit.xml", "--report", "summary.md") == 1
    out = capsys.readouterr().out
    merged, unsharded = _load(runs, "merged.json"), _load(runs, "whole.json")
    assert _comparable(merged) == _comparable(unsharded)
    # Holm's family, the stored baseline's comparison and the power notes came through.
    by_kind = {a["kind"]: a for a in merged["scenarios"][0]["assertions"]}
    assert by_kind["delta"]["p_adjusted"] is not None and by_kind["regression"]["delta"] < 0
    assert by_kind["regression"]["baseline"]["path"] == "specs/baselines/scale.json"
    assert "Holm-adjusted p=" in next(a["message"] for a in merged["scenarios"][0]["assertions"] if a["outcome"] == "failed")
    table = list(summary_lines(unsharded))
    assert list(summary_lines(merged)) == table
    whole = (runs / "whole.txt").read_text(encoding="utf-8")
    for line in table:
        assert line in out and line in whole
    assert "4 passed, 2 failed" in out
    assert 'failures="2"' in (runs / "junit.xml").read_text(encoding="utf-8")
    assert "scale" in (runs / "summary.md").read_text(encoding="utf-8")


def test_a_shard_evaluates_its_cases_for_every_variant_and_skips_the_gates(runs: Path) -> None:
    out = (runs / "shard-2.txt").read_text(encoding="utf-8")
    assert f"{ITEMS} skipped" in out and "shard 2/4: assertions are gated after merge" in out
    assert f"SKIPPED [{ITEMS}]" in out and ": gated after merge" in out
    doc = _load(runs, "shard-2.json")
    assert doc["shard"] == {"k": 2, "n": 4}
    (entry,) = doc["scenarios"]
    ids = {name: [c["id"] for c in v["cases"]] for name, v in entry["variants"].items()}
    assert ids["tuned"] == ids["baseline"] == ids["half"]  # pairs stay together
    assert ids["tuned"] == [r["id"] for r in ROWS if shard_of(r["id"], 4) == 2]
    whole_ids = [r["id"] for r in ROWS]
    assert [c["position"] for c in entry["variants"]["tuned"]["cases"]] == [whole_ids.index(i) for i in ids["tuned"]]
    fingerprint = entry["fingerprint"]
    assert fingerprint["spec"].startswith("sha256:") and fingerprint["llmopt"]
    assert set(fingerprint["variants"]) == {"baseline", "half", "tuned"}
    assert len(fingerprint["assertions"]) == ITEMS
    assert {a["outcome"] for a in entry["assertions"]} == {"skipped"}
    assert {a["message"] for a in entry["assertions"]} == {"gated after merge"}
    # Each shard's identity covers every case, so shards and the whole run share it.
    whole = _load(runs, "whole.json")["scenarios"][0]["variants"]["tuned"]
    assert entry["variants"]["tuned"]["identity_hash"] == whole["identity_hash"]


def test_a_shard_under_xdist_writes_the_same_shard(runs: Path) -> None:
    _wait(_pytest(runs, "-n", "2", "--llmopt-shard=2/4", "--llmopt-json=parallel.json"))
    serial, parallel = (_load(runs, name)["scenarios"][0] for name in ("shard-2.json", "parallel.json"))
    assert parallel["fingerprint"] == serial["fingerprint"]
    for name, variant in serial["variants"].items():
        keys = ("id", "position", "scores", "output")
        assert [{k: c[k] for k in keys} for c in parallel["variants"][name]["cases"]] == [
            {k: c[k] for k in keys} for c in variant["cases"]
        ]
    assert _merge(SHARDS[0], "parallel.json", *SHARDS[2:], "-o", "merged.json") == 1
    assert _comparable(_load(runs, "merged.json")) == _comparable(_load(runs, "whole.json"))


def test_a_merge_where_every_assertion_passes_exits_0(runs: Path) -> None:
    passing = SPEC.replace("min_delta: 0.3", "min_delta: 0.1").replace("max_drop: 0.1", "max_drop: 0.3")
    (runs / "specs" / "scale.yaml").write_text(passing, encoding="utf-8")
    _wait(_pytest(runs, "--llmopt-shard=1/1", "--llmopt-json=one.json"))
    assert _merge("one.json", "-o", "merged.json") == 0
    assert {a["outcome"] for a in _load(runs, "merged.json")["scenarios"][0]["assertions"]} == {"passed"}


@pytest.fixture
def project(project: pytest.Pytester) -> pytest.Pytester:
    _write_project(project.path)
    return project


@pytest.mark.parametrize(
    "text, message",
    [
        ("5/4", "--llmopt-shard '5/4': K counts from 1 to N (4)"),
        ("0/4", "--llmopt-shard '0/4': K counts from 1 to N (4)"),
        ("half", "--llmopt-shard 'half' is not K/N"),
        ("1/0", "--llmopt-shard '1/0': N must be at least 1"),
    ],
)
def test_a_malformed_shard_is_a_usage_error(project: pytest.Pytester, text: str, message: str) -> None:
    result = project.runpytest("specs", f"--llmopt-shard={text}", "--llmopt-json=s.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_a_shard_needs_a_results_json_and_writes_no_baseline(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-shard=1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmopt-shard needs --llmopt-json PATH*"])
    result = project.runpytest("specs", "--llmopt-shard=1/2", "--llmopt-json=s.json", "--llmopt-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot --llmopt-update-baseline from part of the cases*"])


# -- refusals ------------------------------------------------------------------------


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert _merge(*args, "-o", "merged.json") == 2
    err = capsys.readouterr().err
    assert err.startswith("llmopt merge: ") and "Traceback" not in err
    return err


def _edit(folder: Path, name: str, change: Any) -> None:
    doc = _load(folder, name)
    change(doc)
    (folder / name).write_text(json.dumps(doc), encoding="utf-8")


def test_a_missing_shard_is_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "shard 3/4 missing: give all 4 shards' results (have 1/4, 2/4, 4/4)" in _refused(capsys, *SHARDS[:2], SHARDS[3])
    assert not (runs / "merged.json").exists()


def test_a_shard_given_twice_is_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (runs / "again.json").write_bytes((runs / "shard-1.json").read_bytes())
    assert "shard 1/4 given twice: shard-1.json, again.json" in _refused(capsys, SHARDS[0], "again.json", *SHARDS[1:])


def test_shards_of_different_splits_are_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(runs, "shard-4.json", lambda doc: doc.update(shard={"k": 3, "n": 3}))
    err = _refused(capsys, *SHARDS)
    assert "the shards split the cases differently (shard-1.json is 1/4, " in err and "shard-4.json is 3/3)" in err


def test_a_case_in_two_shards_is_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stolen = _load(runs, "shard-1.json")["scenarios"][0]["variants"]["tuned"]["cases"][0]
    _edit(runs, "shard-2.json", lambda doc: doc["scenarios"][0]["variants"]["tuned"]["cases"].append(stolen))
    err = _refused(capsys, *SHARDS)
    assert f"case {stolen['id']!r} of scale::tuned is in two shards: shard 1/4 (shard-1.json) and shard 2/4 (shard-2.json)" in err


def test_a_case_outside_its_shard_is_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stray = next(f"x{i}" for i in range(100) if shard_of(f"x{i}", 4) == 2)

    def add(doc: dict[str, Any]) -> None:
        cases = doc["scenarios"][0]["variants"]["tuned"]["cases"]
        cases.append(dict(cases[0], id=stray))

    _edit(runs, "shard-1.json", add)
    err = _refused(capsys, *SHARDS)
    assert f"case {stray!r} of scale::tuned is in shard 1/4 (shard-1.json), but its id belongs to shard 2" in err


def test_shards_of_different_specs_are_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(runs, "shard-2.json", lambda doc: doc["scenarios"][0]["fingerprint"].update(spec="sha256:0123456789abcdef"))
    err = _refused(capsys, *SHARDS)
    assert "shard 1/4 (shard-1.json) and shard 2/4 (shard-2.json) are not shards of one run: scenario scale (specs/scale.yaml)" in err
    assert "the spec content differs (sha256:" in err


def test_shards_of_different_datasets_are_refused_naming_the_change(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [dict(r, answer="changed") if r["id"] == "c000" else r for r in ROWS]
    (runs / "data" / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _wait(_pytest(runs, "--llmopt-shard=2/4", "--llmopt-json=shard-2.json"))
    assert "variant baseline differs: dataset: sha256:" in _refused(capsys, *SHARDS)


def test_shards_of_different_llmopt_versions_are_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(runs, "shard-2.json", lambda doc: doc["scenarios"][0]["fingerprint"].update(llmopt="0.0.1"))
    assert "the llmopt version differs (" in _refused(capsys, *SHARDS)


def test_a_spec_changed_since_the_shards_ran_is_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (runs / "specs" / "scale.yaml").write_text(SPEC + "\n", encoding="utf-8")
    assert "specs/scale.yaml: the spec changed since the shards ran; run the shards again" in _refused(capsys, *SHARDS)


def test_a_whole_runs_results_are_not_a_shard(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, "whole.json", *SHARDS[1:])
    assert "whole.json: not a shard's results (no shard field): write each with --llmopt-shard K/N" in err
    assert "not JSON" in _refused(capsys, "specs/agent.py")


def test_a_variant_a_shard_could_not_evaluate_keeps_that_shards_error(runs: Path) -> None:
    def fail(doc: dict[str, Any]) -> None:
        entry = doc["scenarios"][0]
        del entry["variants"]["half"]
        for a in entry["assertions"]:
            if "half" in (a["variant"], a["vs"]):
                a.update(outcome="error", message="specs/scale.yaml:31:5: the provider broke")
        del entry["fingerprint"]["variants"]["half"]

    _edit(runs, "shard-2.json", fail)
    assert _merge(*SHARDS, "-o", "merged.json") == 1
    outcomes = {a["id"].rsplit("::", 1)[1]: a for a in _load(runs, "merged.json")["scenarios"][0]["assertions"]}
    assert outcomes["exact_match>=half+0.3"]["outcome"] == "error"
    assert outcomes["exact_match>=half+0.3"]["message"] == "in shard 2/4: specs/scale.yaml:31:5: the provider broke"
    assert outcomes["exact_match>=baseline+0.2"]["outcome"] == "passed"


def test_spec_paths_are_those_of_the_rootdir(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shards = [str(runs / name) for name in SHARDS]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)
        assert "spec not found under" in _refused(capsys, *shards)
        assert _merge(*shards, "-o", "m.json", "--rootdir", str(runs)) == 1
    assert (elsewhere / "m.json").is_file()


def test_an_unknown_report_format_is_refused_before_anything_is_written(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, *SHARDS, "--report", "report.pdf")
    assert "report.pdf" in err and not (runs / "merged.json").exists()
