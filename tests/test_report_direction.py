"""Metric direction: the results JSON says whether higher is better for each metric,
and every report reads it from there instead of guessing from the metric's name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_docs import current_doc, without_directions

from llmopt.cli import main
from llmopt.report import fill_directions
from llmopt.report._markdown import render_markdown
from llmopt.report._page import render_html

TOXICITY = """\
import llmopt
from llmopt.metric import case_metric


@case_metric(name="toxicity", higher_is_better=False)
def toxicity(sample, args):
    "1.0 when the answer insults the user."
    return "idiot" in sample.output


@llmopt.hookimpl
def llmopt_metrics():
    return [toxicity]
"""

SPEC = """\
llmopt: 1
scenario: tox
task:
  expected: answer
  cases:
    - {id: a, question: "Paris", answer: "Paris"}
    - {id: b, question: "Rome", answer: "Rome"}
    - {id: c, question: "Oslo", answer: "Oslo"}
    - {id: d, question: "Bern", answer: "Bern"}
recipe:
  template: "{{ question }}"
model:
  provider: echo
variants:
  baseline: {recipe: {template: "{{ question }}, you idiot"}}
  polite: {}
assertions:
  - {metric: toxicity, variant: polite, vs: baseline, min_delta: 0.5}
  - {metric: toxicity, variant: polite, max: 0.0}
  - {metric: exact_match, variant: polite, vs: baseline, min_delta: 0.5}
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with the ``toxicity`` plugin metric, run once with every report."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makeini("[pytest]\nllmopt_plugins = toxicity_metric\nllmopt_cache_dir = .cache-llmopt\n")
    (pytester.path / "toxicity_metric.py").write_text(TOXICITY, encoding="utf-8")
    (pytester.path / "specs").mkdir()
    (pytester.path / "specs" / "tox.yaml").write_text(SPEC, encoding="utf-8")
    result = pytester.runpytest(
        "specs", "--llmopt-json", "results.json", "--llmopt-report", "report.html", "--llmopt-report", "summary.md"
    )
    result.assert_outcomes(passed=3)
    return pytester.path


def _chart(html: str, title: str) -> str:
    return next(svg for svg in html.split('<svg class="chart"')[1:] if f"<title>{title}</title>" in svg)


def test_the_json_says_which_way_is_better(run: Path) -> None:
    doc = json.loads((run / "results.json").read_text(encoding="utf-8"))
    variants = doc["scenarios"][0]["variants"]
    for name in ("baseline", "polite"):
        assert variants[name]["metrics"]["toxicity"]["higher_is_better"] is False
        assert variants[name]["metrics"]["exact_match"]["higher_is_better"] is True
    assert variants["polite"]["metrics"]["toxicity"]["value"] == 0.0


def test_the_html_colours_and_orients_a_lower_is_better_metric(run: Path) -> None:
    html = (run / "report.html").read_text(encoding="utf-8")
    change = _chart(html, "toxicity: change vs baseline")
    assert 'data-better="lower"' in change and "← lower is better" in change
    assert re.search(r'<circle class="dot up"[^>]*><title>polite: -1\.000', change)  # less toxic: good
    gained = _chart(html, "exact_match: change vs baseline")
    assert 'data-better="higher"' in gained
    assert re.search(r'<circle class="dot up"[^>]*><title>polite: \+1\.000', gained)
    values = _chart(html, "toxicity by variant")
    assert 'data-better="lower"' in values and "higher is better" not in values
    # A toxicity of 0 is no miss: the polite variant's cases all pass.
    polite = html.split("polite")[-1]
    assert 'class="case-failed"' not in polite and polite.count('class="case-ok"') == 4


def test_the_markdown_calls_less_toxicity_better(run: Path) -> None:
    md = (run / "summary.md").read_text(encoding="utf-8")
    assert re.search(r"\| polite \| toxicity \| 0\.000 \| \[[^]]+\] \| -1\.000 better \|", md)
    assert re.search(r"\| polite \| exact_match \| 1\.000 \| \[[^]]+\] \| \+1\.000 better \|", md)
    assert re.search(r"\| baseline \| toxicity \| 1\.000 \| \[[^]]+\] \| \(baseline\) \|", md)


def test_compare_reads_the_direction_from_the_results(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = json.loads((run / "results.json").read_text(encoding="utf-8"))
    old = json.loads(json.dumps(new))
    old["scenarios"][0]["variants"]["polite"]["metrics"]["toxicity"]["value"] = 0.5
    (run / "old.json").write_text(json.dumps(old), encoding="utf-8")
    assert main(["compare", str(run / "old.json"), str(run / "results.json"), "--fail-on-drop", "0.1"]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert any(line.startswith("tox polite toxicity 0.500") and line.endswith("-0.500 better") for line in lines), lines


def test_an_older_file_gets_the_registered_direction_else_higher() -> None:
    old = without_directions(current_doc())
    old["scenarios"][0]["variants"]["rag"]["metrics"]["mystery(k=1)"] = {"value": 0.5, "n": 3, "ci": None}
    from llmopt.registry import create_registry

    filled = fill_directions(old, create_registry(entry_points=False).metrics)
    metrics = filled["scenarios"][0]["variants"]["rag"]["metrics"]
    assert metrics["latency_p95"]["higher_is_better"] is False  # the registered metric's
    assert metrics["contains"]["higher_is_better"] is True
    assert metrics["mystery(k=1)"]["higher_is_better"] is True  # not registered: higher is better
    assert "higher_is_better" not in old["scenarios"][0]["variants"]["rag"]["metrics"]["contains"]  # a copy


def test_an_older_file_renders_without_the_field() -> None:
    old = without_directions(current_doc())
    assert "<svg" in render_html(old) and render_markdown(old).startswith("## llmopt")


def test_llmopt_report_fills_in_an_older_files_directions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(without_directions(current_doc())), encoding="utf-8")
    assert main(["report", str(old), "--md", str(tmp_path / "old.md"), "--html", str(tmp_path / "old.html")]) == 0
    assert (tmp_path / "old.md").read_text(encoding="utf-8") == render_markdown(current_doc())
    assert (tmp_path / "old.html").read_text(encoding="utf-8") == render_html(current_doc())
