"""Honest gates through the plugin: intervals, paired tests, power, repeats, clusters,
stored baselines and identity, driven through pytester with the echo/python providers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import WriteFile

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

#: 200 cases; the echo answer matches for the first 150 (base rate 0.75).
ROWS = [{"id": f"c{i:03d}", "question": f"q{i}", "answer": f"q{i}" if i < 150 else "other"} for i in range(200)]

REGRESSION_SPEC = """\
llmopt: 1
scenario: gate
task:
  dataset: ../data/cases.jsonl
  id: id
  expected: answer
recipe:
  template: "{{{{ question }}}}"
model:
  provider: echo
  id: {model}
assertions:
  - metric: exact_match
    min: 0.5
  - metric: exact_match
    regression: {{max_drop: 0.02, confidence: 0.95{extra}}}
"""


@pytest.fixture
def project(project: pytest.Pytester) -> pytest.Pytester:
    """The shared project with the cases' dataset."""
    data = project.path / "data" / "cases.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return project


def regression_spec(model: str = "gpt-4o-mini-2024-07-18", extra: str = "") -> str:
    return REGRESSION_SPEC.format(model=model, extra=extra)


def results(pytester: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    return json.loads((pytester.path / name).read_text(encoding="utf-8"))


def assertion(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(a for s in doc["scenarios"] for a in s["assertions"] if a["kind"] == kind)


# -- deltas ----------------------------------------------------------------------------

DELTA_SPEC = """\
llmopt: 1
scenario: lift
task:
  dataset: ../data/cases.jsonl
  id: id
  expected: answer
recipe:
  template: "{{ question }}"
model:
  provider: echo
variants:
  baseline: {recipe: {template: "{{ question if question[-1] in '0123' else 'no' }}"}}
  tuned: {}
assertions:
  - metric: exact_match
    variant: tuned
    vs: baseline
    min_delta: 0.2
    confidence: 0.95
  - metric: exact_match
    variant: tuned
    vs: baseline
    min_delta: 0.5
    confidence: 0.95
  - metric: exact_match
    variant: baseline
    vs: tuned
    max_drop: 0.6
    confidence: 0.95
"""


def test_confident_delta_reports_interval_p_value_and_power(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/lift.yaml", DELTA_SPEC)
    result = project.runpytest("specs", "--llmopt-json", "r.json")
    result.assert_outcomes(passed=2, failed=1)
    doc = results(project)
    by_name = {a["id"].rsplit("::", 1)[1]: a for a in doc["scenarios"][0]["assertions"]}
    lift = by_name["exact_match>=baseline+0.2"]
    # tuned right on 150 cases, baseline on the 60 of them whose question ends in 0-3
    assert lift["delta"] == pytest.approx(90 / 200)
    assert lift["kind"] == "delta" and lift["test"] == "mcnemar-exact" and lift["confidence"] == 0.95
    assert lift["outcome"] == "passed" and 0.2 <= lift["ci"][0] < 0.45 < lift["ci"][1]
    assert lift["p_value"] < 1e-20 and lift["n"] == 200 and lift["mde"] > 0 and lift["underpowered"] is False
    assert by_name["exact_match>=baseline+0.5"]["outcome"] == "failed"
    drop = by_name["exact_match>=tuned-0.6"]
    assert drop["kind"] == "non_inferiority" and drop["outcome"] == "passed" and drop["ci"][0] >= -0.6
    metric = doc["scenarios"][0]["variants"]["tuned"]["metrics"]["exact_match"]
    assert metric["method"] == "wilson" and metric["se"] == pytest.approx((0.75 * 0.25 / 200) ** 0.5)
    result.stdout.fnmatch_lines(
        [
            "*exact_match: tuned - baseline = +0.450 (200 paired cases, 95% CI ?+0.*, +0.*?, mcnemar-exact p=*",
            "*tuned*exact_match*0.750*?0.686, 0.805?*0.031*>= baseline + 0.2 at 95% confidence (delta +0.450) CI ?+0.3*, +0.5*? p=*PASSED*",
            "*power: tuned vs baseline exact_match: minimum detectable effect 0.* at n=200 (95% confidence, 80% power)",
        ]
    )


def test_small_sample_is_underpowered_and_fails_the_confident_gate(project: pytest.Pytester, write: WriteFile) -> None:
    spec = DELTA_SPEC.replace("dataset: ../data/cases.jsonl", "dataset: ../data/cases.jsonl\n  sample: 12")
    write(project, "specs/lift.yaml", spec)
    result = project.runpytest("specs", "--llmopt-json", "r.json")
    lift = next(a for a in results(project)["scenarios"][0]["assertions"] if a["id"].endswith("+0.2"))
    assert lift["underpowered"] is True and lift["needed_n"] > 12
    result.stdout.fnmatch_lines(["*power: tuned vs baseline*UNDERPOWERED: the asked margin 0.2 is below it, about * cases needed"])


def test_without_confidence_the_point_estimate_decides(project: pytest.Pytester, write: WriteFile) -> None:
    spec = DELTA_SPEC.replace("    confidence: 0.95\n", "").replace("sample", "sample")
    spec = spec.replace("dataset: ../data/cases.jsonl", "dataset: ../data/cases.jsonl\n  sample: 12")
    write(project, "specs/lift.yaml", spec)
    project.runpytest("specs", "--llmopt-json", "r.json")
    doc = results(project)
    lift = next(a for a in doc["scenarios"][0]["assertions"] if a["id"].endswith("+0.2"))
    assert lift["confidence"] is None and lift["p_value"] is not None and lift["ci"] is not None
    assert lift["outcome"] == ("passed" if lift["delta"] >= 0.2 else "failed")


def test_holm_correction_adjusts_the_family(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/lift.yaml", DELTA_SPEC.replace("scenario: lift", "scenario: lift\ncorrection: holm"))
    project.runpytest("specs", "--llmopt-json", "r.json")
    deltas = [a for a in results(project)["scenarios"][0]["assertions"] if a["kind"] == "delta"]
    assert len(deltas) == 2
    assert all(a["p_adjusted"] == pytest.approx(min(1.0, 2 * a["p_value"])) for a in deltas)
    passed = {a["id"].rsplit("::", 1)[1]: a["outcome"] for a in deltas}
    assert passed == {"exact_match>=baseline+0.2": "passed", "exact_match>=baseline+0.5": "failed"}


def test_confident_threshold_needs_the_whole_interval_above(project: pytest.Pytester, write: WriteFile) -> None:
    spec = regression_spec().split("  - metric: exact_match\n    regression")[0]
    write(project, "specs/gate.yaml", spec.replace("min: 0.5", "min: 0.72\n    confidence: 0.95"))
    result = project.runpytest("specs")
    result.assert_outcomes(failed=1)  # 0.75 > 0.72, but its interval reaches below
    result.stdout.fnmatch_lines(["*exact_match of default = 0.750 (n=200, 95% CI ?0.686, 0.805?); expected >= 0.72 at 95% confidence"])


# -- repeats and clusters ----------------------------------------------------------------

AGENT = """\
calls = {}

def answer(case):
    n = calls[case["id"]] = calls.get(case["id"], 0) + 1
    if case["id"] in ("c001", "c002"):
        return case["answer"] if n % 2 else "wrong"
    return case["answer"]
"""

REPEAT_SPEC = """\
llmopt: 1
scenario: repeats
task:
  dataset: ../data/cases.jsonl
  id: id
  expected: answer
  repeat: 3
  reduce: {reduce}
recipe:
  template: "{{{{ question }}}}"
model:
  provider: python
  id: agent.py:answer
assertions:
  - metric: exact_match
    min: 0.5
"""


@pytest.mark.parametrize(("reduce", "value"), [("mean", 1 - 2 / 30), ("majority", 1.0), ("pass_at_k", 1.0), ("pass_all_k", 0.8)])
def test_repeats_reduce_and_flaky_cases_are_listed(project: pytest.Pytester, reduce: str, value: float, write: WriteFile) -> None:
    rows = "".join(json.dumps(r) + "\n" for r in ROWS[:10])
    (project.path / "data" / "cases.jsonl").write_text(rows, encoding="utf-8")
    write(project, "specs/agent.py", AGENT)
    write(project, "specs/repeats.yaml", REPEAT_SPEC.format(reduce=reduce))
    project.runpytest("specs", "--llmopt-json", "r.json").stdout.fnmatch_lines(
        ["*flaky: default: 2 cases scored differently across repeats: c00*, c00*"]
    )
    variant = results(project)["scenarios"][0]["variants"]["default"]
    assert variant["metrics"]["exact_match"]["value"] == pytest.approx(value)
    assert sorted(variant["flaky"]) == ["c001", "c002"]
    consistency = {c["id"]: c["consistency"] for c in variant["cases"]}
    assert consistency["c001"] == pytest.approx(2 / 3, abs=1e-4) and consistency["c000"] == 1.0


def test_cluster_field_gives_clustered_errors(project: pytest.Pytester, write: WriteFile) -> None:
    rows = [{"id": f"c{i}", "question": "a" if i < 10 else "b", "answer": "a", "doc": f"d{i // 5}"} for i in range(20)]
    (project.path / "data" / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = regression_spec().split("  - metric: exact_match\n    regression")[0]
    write(project, "specs/gate.yaml", spec.replace("  expected: answer", "  expected: answer\n  cluster: doc"))
    project.runpytest("specs", "--llmopt-json", "r.json")
    metric = results(project)["scenarios"][0]["variants"]["default"]["metrics"]["exact_match"]
    assert metric["method"] == "cluster" and metric["clusters"] == 4
    assert metric["se"] == pytest.approx((4 / 3 * (2 * 2.5**2 + 2 * 2.5**2)) ** 0.5 / 20)


def test_missing_cluster_field_is_an_error(project: pytest.Pytester, write: WriteFile) -> None:
    spec = regression_spec().split("  - metric: exact_match\n    regression")[0]
    write(project, "specs/gate.yaml", spec.replace("  expected: answer", "  expected: answer\n  cluster: doc"))
    result = project.runpytest("specs")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*task.cluster field 'doc' is missing in case 'c000'*"])


# -- stored baselines ------------------------------------------------------------------


def test_missing_baseline_is_an_error_naming_the_command(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/gate.yaml", regression_spec())
    result = project.runpytest("specs")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*no stored baseline: specs/baselines/gate.json does not exist; create it with: "
         "pytest specs/gate.yaml --llmopt-update-baseline"]
    )


def test_baseline_passes_unchanged_and_catches_a_planted_regression(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/gate.yaml", regression_spec())
    project.runpytest("specs", "--llmopt-update-baseline").assert_outcomes(passed=2)
    stored = json.loads((project.path / "specs/baselines/gate.json").read_text())
    entry = stored["variants"]["default"]
    assert entry["cases"]["c000"] == {"exact_match": 1.0} and entry["identity"]["model"] == "gpt-4o-mini-2024-07-18"
    assert entry["identity_hash"].startswith("sha256:")

    unchanged = project.runpytest("specs", "--llmopt-json", "r.json", "-W", "error::UserWarning")
    unchanged.assert_outcomes(passed=2)
    check = assertion(results(project), "regression")
    assert check["delta"] == 0.0 and check["ci"][0] >= -0.02 and check["baseline"]["changed"] == []

    planted = regression_spec().replace("{{ question }}", "{{ question if question[-1] != '7' else 'no' }}")
    write(project, "specs/gate.yaml", planted)
    result = project.runpytest("specs", "--llmopt-json", "r.json")
    result.assert_outcomes(passed=1, failed=1)
    check = assertion(results(project), "regression")
    assert check["delta"] == pytest.approx(-15 / 200) and check["ci"][1] < 0
    result.stdout.fnmatch_lines(["*exact_match: default - stored = -0.075 (200 paired cases, 95% CI*"])
    assert "recipe: sha256:" in result.stdout.str()


def test_baseline_file_is_stable_and_reviewable(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/gate.yaml", regression_spec())
    project.runpytest("specs", "--llmopt-update-baseline")
    path = project.path / "specs/baselines/gate.json"
    first = path.read_text()
    project.runpytest("specs", "--llmopt-update-baseline")
    assert path.read_text() == first
    assert first.startswith('{\n  "llmopt_baseline": 1,') and json.loads(first)["spec"] == "gate.yaml"


def test_changed_model_id_is_named_in_a_warning(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/gate.yaml", regression_spec())
    project.runpytest("specs", "--llmopt-update-baseline")
    write(project, "specs/gate.yaml", regression_spec(model="gpt-4o-mini-2025-04-14"))
    result = project.runpytest("specs", "--llmopt-json", "r.json")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*IdentityWarning: the stored baseline of gate::default (specs/baselines/gate.json) was measured with "
            "another identity: model: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2025-04-14",
            "*identity changed since the stored baseline: default: model: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2025-04-14",
        ]
    )
    assert assertion(results(project), "regression")["baseline"]["changed"] == [
        "model: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2025-04-14"
    ]


def test_strict_identity_makes_a_changed_model_an_error(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/gate.yaml", regression_spec())
    project.runpytest("specs", "--llmopt-update-baseline")
    write(project, "specs/gate.yaml", regression_spec(model="gpt-4o-mini-2025-04-14", extra=", strict_identity: true"))
    result = project.runpytest("specs")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*(strict_identity): model: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2025-04-14; *"])


def test_update_under_xdist_writes_each_scenario_once(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/gate.yaml", regression_spec())
    write(project, "specs/other.yaml", regression_spec().replace("scenario: gate", "scenario: other"))
    project.runpytest("specs", "-n", "2", "--llmopt-update-baseline").assert_outcomes(passed=4)
    assert sorted(p.name for p in (project.path / "specs/baselines").iterdir()) == ["gate.json", "other.json"]
    project.runpytest("specs", "-n", "2").assert_outcomes(passed=4)


# -- gates that cannot pass (issue 14, item 5) -------------------------------------------

SMALL_SPEC = """\
llmopt: 1
scenario: small
task:
  dataset: ../data/cases.jsonl
  id: id
  expected: answer
  sample: {n}
recipe:
  template: "{{{{ question }}}}"
model:
  provider: echo
variants:
  base: {{}}
  same: {{}}
assertions:
  - metric: exact_match
    variant: base
    regression: {{max_drop: 0.05, confidence: 0.95}}
  - metric: token_f1
    variant: same
    vs: base
    max_drop: 0.05
    confidence: 0.95
"""


def test_a_gate_that_cannot_pass_at_its_n_is_announced_at_collection(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/small.yaml", SMALL_SPEC.format(n=24))
    result = project.runpytest("specs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            (
                "*GateWarning: specs/small.yaml:16:5: assertions?0? exact_match>=stored-0.05 on base: this regression "
                "gate cannot pass at n=24 even if nothing changes: with identical scores its 95% interval of the "
                "delta reaches -0.075, below -0.05; about 38 cases are needed*"
            ),
        ]
    )
    assert "assertions[1] token_f1>=base-0.05 on same: this non-inferiority vs base gate cannot pass at n=24" in result.stdout.str()


def test_a_gate_that_can_pass_at_its_n_gives_no_warning(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/small.yaml", SMALL_SPEC.format(n=38))
    result = project.runpytest("specs", "--collect-only", "-q", "-W", "error::UserWarning")
    assert "GateWarning" not in result.stdout.str()
    result.assert_outcomes()


def test_identical_continuous_scores_report_an_interval_and_a_positive_mde(project: pytest.Pytester, write: WriteFile) -> None:
    write(project, "specs/small.yaml", SMALL_SPEC.format(n=38))
    project.runpytest("specs", "--llmopt-update-baseline", "--llmopt-json", "r.json").assert_outcomes(passed=2)
    check = assertion(results(project), "non_inferiority")
    assert check["delta"] == 0.0 and check["ci"][0] < 0.0 < check["ci"][1]
    assert check["mde"] > 0.05
