"""The report options of the pytest plugin: --llmopt-report, the job summary, JUnit
properties with the numbers, and the live progress note."""

from __future__ import annotations

import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SPEC = """\
llmopt: 1
scenario: echo-demo
task:
  expected: answer
  cases:
    - {id: a, question: "Paris", answer: "Paris"}
    - {id: b, question: "Rome", answer: "Rome"}
    - {id: c, question: "Oslo", answer: "Lima"}
    - {id: d, question: "Bern", answer: "Bern"}
recipe:
  template: "{{ question }}"
model:
  provider: echo
variants:
  baseline: {recipe: {template: "I think it is {{ question }}, maybe"}}
  tuned: {}
assertions:
  - metric: exact_match
    variant: tuned
    min: 0.7
  - metric: exact_match
    variant: tuned
    vs: baseline
    min_delta: 0.9
"""


@pytest.fixture
def project(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The shared project with the demo spec, outside a GitHub job."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (project.path / "specs" / "demo.yaml").write_text(SPEC, encoding="utf-8")
    return project


def test_html_and_markdown_reports_by_suffix(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-report", "out/report.html", "--llmopt-report", "summary.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["report: out/report.html", "report: summary.md"])
    html = (project.path / "out" / "report.html").read_text(encoding="utf-8")
    assert html.count('<svg class="chart"') == 2 and "echo-demo" in html
    md = (project.path / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("## llmopt ❌ 1 passed, 1 failed")
    assert "| ❌ failed | echo-demo | tuned | exact_match | 0.750 | &gt;= baseline + 0.9 | +0.750 |" in md


def test_unknown_report_suffix_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-report", "report.pdf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmopt-report report.pdf: unknown report format '.pdf'*"])


def test_summary_goes_to_the_github_job_summary(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    target = project.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    result = project.runpytest("specs")
    result.stdout.fnmatch_lines([f"summary appended to $GITHUB_STEP_SUMMARY ({target})"])
    text = target.read_text(encoding="utf-8")
    assert text.startswith("## llmopt ❌ 1 passed, 1 failed") and "### echo-demo" in text


def test_reports_merge_the_xdist_workers(project: pytest.Pytester) -> None:
    (project.path / "specs" / "other.yaml").write_text(SPEC.replace("echo-demo", "other-demo"), encoding="utf-8")
    result = project.runpytest_subprocess(
        "specs", "-n", "2", "--llmopt-report", "summary.md", "--llmopt-progress=on", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=2)
    md = (project.path / "summary.md").read_text(encoding="utf-8")
    assert "### echo-demo" in md and "### other-demo" in md


def _properties(xml: Path) -> dict[str, dict[str, str]]:
    cases = ET.parse(xml).getroot().iter("testcase")
    return {c.get("name", ""): {p.get("name", ""): p.get("value", "") for p in c.iter("property")} for c in cases}


def test_junit_carries_the_numbers(project: pytest.Pytester) -> None:
    project.runpytest("specs", "--junitxml", "junit.xml")
    props = _properties(project.path / "junit.xml")
    threshold, delta = props["exact_match>=0.7"], props["exact_match>=baseline+0.9"]
    assert threshold["llmopt_metric"] == "exact_match"
    assert threshold["llmopt_observed"] == "0.75" and threshold["llmopt_min"] == "0.7"
    assert threshold["llmopt_n"] == "4"
    assert float(threshold["llmopt_ci_low"]) <= 0.75 <= float(threshold["llmopt_ci_high"])
    assert delta["llmopt_min_delta"] == "0.9" and delta["llmopt_vs"] == "baseline"
    assert delta["llmopt_delta"] == "0.75" and delta["llmopt_expected"] == ">= baseline + 0.9"
    assert float(delta["llmopt_ci_low"]) <= 0.75 <= float(delta["llmopt_ci_high"])
    assert delta["llmopt_kind"] == "delta" and delta["llmopt_test"] == "mcnemar-exact"
    assert 0.0 < float(delta["llmopt_p_value"]) <= 1.0
    assert float(delta["llmopt_mde"]) > 0 and delta["llmopt_underpowered"] in ("True", "False")
    assert threshold["llmopt_kind"] == "threshold" and "llmopt_p_value" not in threshold


def test_junit_carries_each_property_once(project: pytest.Pytester) -> None:
    project.runpytest("specs", "--junitxml", "junit.xml")
    cases = list(ET.parse(project.path / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == 2
    for case in cases:
        names = [p.get("name", "") for p in case.iter("property")]
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    delta = _properties(project.path / "junit.xml")["exact_match>=baseline+0.9"]
    assert {"llmopt_p_value", "llmopt_mde", "llmopt_ci_low", "llmopt_n"} <= set(delta)
    assert delta["llmopt_mde"] == str(round(float(delta["llmopt_mde"]), 6))  # one precision: rounded


def test_progress_note_is_drawn_then_cleared(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    result = project.runpytest("specs", "--llmopt-progress=on", "-p", "no:randomly")
    out = result.stdout.str()
    assert "[llmopt echo-demo/baseline: 4/4 cases, 0 errors, 0 cached, $0.0000]" in out
    assert "[llmopt echo-demo/tuned: 4/4 cases, 0 errors, 0 cached, $0.0000]" in out
    assert out.count("\x1b[K") >= 4  # each note is cleared once its variant is done
    line = next(x for x in result.outlines if x.startswith("specs/demo.yaml"))
    assert re.fullmatch(r"specs/demo\.yaml \.F +\[100%\]", _screen(line))  # what the terminal shows
    result.stdout.fnmatch_lines(["*= llmopt summary =*"])


SLOW_AGENT = """\
import time


def answer(prompt):
    time.sleep(0.15)
    return prompt
"""


def test_the_controller_draws_its_workers_progress(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    slow = SPEC.replace("  provider: echo\n", "  provider: python\n  id: agent.py:answer\n  concurrency: 1\n")
    (project.path / "specs" / "demo.yaml").write_text(slow, encoding="utf-8")
    (project.path / "specs" / "other.yaml").write_text(slow.replace("echo-demo", "other-demo"), encoding="utf-8")
    (project.path / "specs" / "agent.py").write_text(SLOW_AGENT, encoding="utf-8")
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("llmopt-progress-*"))
    result = project.runpytest_subprocess("specs", "-n", "2", "--llmopt-progress=on", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert re.search(r"\[llmopt gw[01] (echo|other)-demo/(baseline|tuned) \d/4", out)  # drawn from the workers' files
    assert re.search(r"\| 0 errors, 0 cached, \$0\.0000\]", out)
    progress = next(x for x in result.outlines if "[100%]" in _screen(x))
    assert re.fullmatch(r"[.F]{4} +\[100%\]", _screen(progress))  # the note is gone from what the terminal shows
    assert not any("[llmopt" in _screen(x) for x in result.outlines)
    assert set(temp.glob("llmopt-progress-*")) == before  # the progress files are removed


def _screen(line: str) -> str:
    """What a terminal shows for ``line``: applies clear-to-end and cursor-left."""
    cells: list[str] = []
    cursor = 0
    for token in re.findall(r"\x1b\[(\d*)([A-Za-z])|(.)", line):
        count, command, char = token
        if char:
            cells[cursor:cursor + 1] = [char]
            cursor += 1
        elif command == "K":
            del cells[cursor:]
        elif command == "D":
            cursor = max(0, cursor - int(count or 1))
    return "".join(cells).rstrip()


def test_progress_note_is_cut_to_the_room_left(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    out = project.runpytest("specs", "--llmopt-progress=on").stdout.str()
    notes = [part.split("\x1b[")[0] for part in out.split("\x1b[K") if part.startswith(" [llmopt")]
    assert notes and all(len("specs/demo.yaml ") + len(n) <= 58 and n.endswith("…]") for n in notes)


def test_no_progress_off_a_terminal(project: pytest.Pytester) -> None:
    result = project.runpytest("specs")
    assert "[llmopt " not in result.stdout.str() and "\x1b[" not in result.stdout.str()


def test_a_skipped_assertion_keeps_its_reason(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    hosted = SPEC.replace("  tuned: {}\n", "  tuned: {}\n  hosted: {model: {provider: openai, id: gpt-4o-mini}}\n")
    hosted += "  - {metric: exact_match, variant: hosted, min: 0.5}\n"
    (project.path / "specs" / "demo.yaml").write_text(hosted, encoding="utf-8")
    result = project.runpytest("specs", "--llmopt-unavailable=skip", "--llmopt-report", "summary.md", "--llmopt-json", "r.json")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    import json

    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    skipped = [a for a in doc["scenarios"][0]["assertions"] if a["outcome"] == "skipped"]
    assert skipped[0]["message"].startswith("specs/demo.yaml:") and "OPENAI_API_KEY" in skipped[0]["message"]
    md = (project.path / "summary.md").read_text(encoding="utf-8")
    assert md.index("⏭️ skipped") > md.index("✅ passed")  # failures first, skips last
