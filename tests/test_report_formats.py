"""Report formats as plugins: the built-in ones and a project's own, chosen by suffix or
by name (``FORMAT:PATH``) in ``--llmopt-report`` and ``llmopt report``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping

import pytest
from report_docs import current_doc

from llmopt.cli import main
from llmopt.registry import create_registry
from llmopt.report import (
    ReportError,
    builtin_report_formats,
    junit_properties,
    report_target,
)

CSV_PLUGIN = """\
import csv

import llmopt


class CsvFormat:
    name = "csv"
    suffixes = (".csv",)

    def write(self, results, path):
        with path.open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["scenario", "variant", "metric", "value", "higher_is_better"])
            for entry in results["scenarios"]:
                for name, variant in entry["variants"].items():
                    for key, m in variant["metrics"].items():
                        out.writerow([entry["scenario"], name, key, m["value"], m["higher_is_better"]])


@llmopt.hookimpl
def llmopt_report_formats():
    return [CsvFormat()]
"""

SPEC = """\
llmopt: 1
scenario: echo-demo
task:
  expected: answer
  cases:
    - {id: a, question: "Paris", answer: "Paris"}
    - {id: b, question: "Oslo", answer: "Lima"}
recipe:
  template: "{{ question }}"
model:
  provider: echo
assertions:
  - {metric: exact_match, min: 0.4}
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makeini("[pytest]\nllmopt_plugins = csv_report\nllmopt_cache_dir = .cache-llmopt\n")
    (pytester.path / "csv_report.py").write_text(CSV_PLUGIN, encoding="utf-8")
    (pytester.path / "specs").mkdir()
    (pytester.path / "specs" / "demo.yaml").write_text(SPEC, encoding="utf-8")
    return pytester


def test_the_built_in_formats_are_registered_like_a_plugins() -> None:
    formats = create_registry(entry_points=False).report_formats
    assert {name: f.suffixes for name, f in formats.items()} == {
        "html": (".html", ".htm"), "markdown": (".md", ".markdown"), "json": (".json",), "junit": (".xml",),
    }


def test_a_project_format_writes_its_report(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-report", "out/metrics.csv", "--llmopt-report", "csv:named.txt")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["report: out/metrics.csv", "report: named.txt"])
    rows = (project.path / "out" / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert rows == ["scenario,variant,metric,value,higher_is_better", "echo-demo,default,exact_match,0.5,True"]
    assert (project.path / "named.txt").read_text(encoding="utf-8").splitlines() == rows


def test_an_unknown_suffix_names_the_known_formats(project: pytest.Pytester) -> None:
    result = project.runpytest("specs", "--llmopt-report", "report.pdf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    known = "csv (.csv), html (.html, .htm), json (.json), junit (.xml), markdown (.md, .markdown)"
    message = f"--llmopt-report report.pdf: unknown report format '.pdf'; use one of {known}, or name one: FORMAT:PATH"
    result.stderr.fnmatch_lines([f"*{message}*"])
    named = project.runpytest("specs", "--llmopt-report", "pdf:report.pdf")
    assert named.ret == pytest.ExitCode.USAGE_ERROR
    named.stderr.fnmatch_lines(["*--llmopt-report pdf:report.pdf: unknown report format 'pdf'; use one of csv (.csv)*"])


def test_llmopt_report_uses_the_projects_formats(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project.path)
    project.runpytest("specs", "--llmopt-json", "results.json").assert_outcomes(passed=1)
    capsys.readouterr()
    assert main(["report", "results.json", "-o", "again.csv", "-o", "junit:junit.txt"]) == 0
    assert capsys.readouterr().out.splitlines() == ["report: again.csv", "report: junit.txt"]
    assert (project.path / "again.csv").read_text(encoding="utf-8").startswith("scenario,variant,metric")
    assert ET.parse(project.path / "junit.txt").getroot().tag == "testsuites"


def test_the_junit_format_writes_one_case_per_assertion(tmp_path: Path) -> None:
    target = report_target(str(tmp_path / "llmopt.xml"), {f.name: f for f in builtin_report_formats()})
    target.format.write(current_doc(), target.path)
    suite = ET.parse(target.path).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failed, passed = suite.iter("testcase")
    assert failed.get("classname") == "specs.helpdesk.yaml.help<desk>.rag"
    assert failed.get("name") == "contains>=baseline+0.9"
    failure = failed.find("failure")
    assert failure is not None and failure.text == "contains: rag - baseline = +0.500 <oops>"
    props = {p.get("name"): p.get("value") for p in failed.iter("property")}
    assert props == {"llmopt_metric": "contains", "llmopt_observed": "1.0", "llmopt_expected": ">= baseline + 0.9",
                     "llmopt_delta": "0.5", "llmopt_vs": "baseline"}
    assert passed.find("failure") is None


def test_junit_properties_are_each_written_once() -> None:
    outcome = {"metric": "m", "observed": 0.123456789, "vs": "base", "n": 10, "ci": [0.1, 0.2], "kind": "delta",
               "p_value": 0.01, "mde": 0.1234567891, "baseline": {"path": "b.json"}}
    props = junit_properties(outcome, {"min": None, "min_delta": 0.1})
    names = [name for name, _ in props]
    assert len(names) == len(set(names))
    assert dict(props) == {
        "llmopt_metric": "m", "llmopt_observed": 0.123457, "llmopt_min_delta": 0.1, "llmopt_vs": "base", "llmopt_n": 10,
        "llmopt_ci_low": 0.1, "llmopt_ci_high": 0.2, "llmopt_kind": "delta", "llmopt_p_value": 0.01,
        "llmopt_mde": 0.123457, "llmopt_baseline": "b.json",
    }


class _Claims:
    def __init__(self, name: str, suffixes: tuple[str, ...]) -> None:
        self.name, self.suffixes = name, suffixes

    def write(self, results: Mapping[str, Any], path: Path) -> None:
        path.write_text(json.dumps(results), encoding="utf-8")


def test_the_longest_suffix_wins_and_a_shared_one_must_be_named() -> None:
    formats = {f.name: f for f in builtin_report_formats()}
    formats |= {"digest": _Claims("digest", (".digest.json",)), "alpha": _Claims("alpha", (".x",)),
                "beta": _Claims("beta", (".X",))}
    assert report_target("out/run.digest.json", formats).format.name == "digest"
    assert report_target("out/run.json", formats).format.name == "json"
    assert report_target("alpha:out/run.x", formats).format.name == "alpha"
    with pytest.raises(ReportError, match=r"run\.x: the suffix is claimed by the report formats alpha and beta"):
        report_target("run.x", formats)
    assert report_target(r"C:\out\run.html", formats).format.name == "html"  # a drive letter is no format
