"""Report layout: the terminal summary fits its terminal, the HTML marks only checked
variants' misses as failures, the Markdown names the interval level and p it shows."""

from __future__ import annotations

import copy
import re

import pytest
from conftest import WriteFile
from report_docs import current_doc, extended_doc

from llmopt.report import summary_lines
from llmopt.report._markdown import render_markdown
from llmopt.report._page import render_html

WIDE_SPEC = """\
llmopt: 1
scenario: a-scenario-with-a-rather-long-name
task:
  id: id
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
correction: holm
variants:
  the-baseline-variant: {recipe: {template: "I think it is {{ question }}, maybe"}}
  the-tuned-variant-with-a-long-name: {}
assertions:
  - metric: exact_match
    variant: the-tuned-variant-with-a-long-name
    min: 0.7
  - metric: exact_match
    variant: the-tuned-variant-with-a-long-name
    vs: the-baseline-variant
    min_delta: 0.5
  - metric: token_f1
    variant: the-tuned-variant-with-a-long-name
    vs: the-baseline-variant
    min_delta: 0.1
    confidence: 0.9
"""


def _summary(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "llmopt summary" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("spent ") or "spent $" in line)
    return lines[start + 1 : end]


def test_the_terminal_summary_fits_120_columns_and_keeps_every_value(
    project: pytest.Pytester, write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the inner run is no worker
    monkeypatch.delenv("COLUMNS", raising=False)
    write(project, "specs/wide.yaml", WIDE_SPEC)
    wide = project.runpytest("specs", "-p", "no:cacheprovider")
    whole = _summary(wide.stdout.str())  # no known width (a pipe): the table is written whole
    assert max(map(len, whole)) > 120
    monkeypatch.setenv("COLUMNS", "120")
    result = project.runpytest("specs", "-p", "no:cacheprovider")
    lines = _summary(result.stdout.str())
    assert lines and all(len(line) <= 120 for line in lines), [line for line in lines if len(line) > 120]
    text = " ".join(" ".join(lines).split())
    numbers = set(re.findall(r"[-+]?\d+\.\d+|p_holm=\S+|p=\S+", " ".join(whole)))
    assert numbers and all(n in text for n in numbers), numbers - {n for n in numbers if n in text}
    for word in ("the-tuned-variant-with-a-long-name", "exact_match", "token_f1", "PASSED", "check:"):
        assert word in text


@pytest.mark.parametrize("width", [120, 80, 60])
def test_summary_lines_fit_any_width(width: int) -> None:
    lines = list(summary_lines(extended_doc(), width))
    assert all(len(line) <= width for line in lines)
    text = " ".join(" ".join(lines).split())
    for value in ("0.333", "[0.000, 1.000]", "p=0.0312", "p_holm=0.0624", "FAILED", "PASSED", "0.0050",
                  "about 40 cases needed", ">= baseline + 0.9 (delta +0.500)"):
        assert value in text


def test_the_summary_is_one_table_when_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert list(summary_lines(extended_doc(), 400)) == list(summary_lines(extended_doc()))


def test_a_baseline_without_assertion_has_no_failed_cases() -> None:
    html = render_html(current_doc())  # the baseline misses q1 and q3, but nothing checks it
    baseline = html.split("<summary>baseline:")[1].split("</details>")[0]
    assert 'class="case-failed"' not in baseline and baseline.count('class="case-ok"') == 3
    assert "no assertion checks this variant" in html.split("<summary>baseline:")[1].split("</summary>")[0]
    rag = html.split("<summary>rag:")[1]
    assert rag.count('class="case-error"') == 1  # errors are marked on every variant


def _md_head(md: str) -> str:
    return next(line for line in md.splitlines() if line.startswith("| result |"))


def test_markdown_names_the_interval_level_shown_and_a_holm_adjusted_p() -> None:
    doc = extended_doc()
    delta = doc["scenarios"][0]["assertions"][0]
    delta["ci_level"] = 0.9875  # 1 - 0.05 / 4: Holm's first step over four deltas
    doc["scenarios"][0]["assertions"] = [delta]
    head = _md_head(render_markdown(doc))
    assert "98.8% CI" in head and "95% CI" not in head
    assert "p (Holm-adjusted)" in head


def test_markdown_marks_each_level_when_they_differ() -> None:
    doc = extended_doc()
    doc["scenarios"][0]["assertions"][0]["ci_level"] = 0.9875
    doc["scenarios"][0]["assertions"][1]["ci_level"] = 0.95
    md = render_markdown(doc)
    assert "95% CI" not in _md_head(md) and "| 98.8% [-0.100, +0.900] |" in md and "| 95% [0.600, 1.000] |" in md
    plain = copy.deepcopy(current_doc())
    assert "| 95% CI | p |" in _md_head(render_markdown(plain))
