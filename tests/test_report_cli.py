"""``llmopt report``, ``llmopt compare`` and ``llmopt validate`` on planted problems."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from report_docs import current_doc, extended_doc

from llmopt.cli import main


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder: compare loads ./pyproject.toml's plugins, and this
    repository's would stay imported for the tests that follow."""
    monkeypatch.chdir(tmp_path)


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_report_renders_html_and_markdown_from_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _write(tmp_path / "results.json", extended_doc())
    html, md = tmp_path / "out" / "r.html", tmp_path / "r.md"
    assert main(["report", str(results), "--html", str(html), "--md", str(md)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"report: {html}", f"report: {md}"]
    assert "<svg" in html.read_text(encoding="utf-8")
    assert md.read_text(encoding="utf-8").startswith("## llmopt ❌")


def test_the_explicit_flag_wins_over_the_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _write(tmp_path / "results.json", current_doc())
    html, md = tmp_path / "page.md", tmp_path / "summary.html"
    assert main(["report", str(results), "--html", str(html), "--md", str(md)]) == 0
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert md.read_text(encoding="utf-8").startswith("## llmopt")
    named = tmp_path / "named.txt"
    assert main(["report", str(results), "-o", f"markdown:{named}", "-o", str(tmp_path / "by-suffix.htm")]) == 0
    assert named.read_text(encoding="utf-8").startswith("## llmopt")
    assert (tmp_path / "by-suffix.htm").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _write(tmp_path / "results.json", current_doc())
    assert main(["report", str(results)]) == 2
    assert "nothing to write; give --html PATH, --md PATH and/or -o [FORMAT:]PATH" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "none.json"), "--md", str(tmp_path / "x.md")]) == 2
    assert "none.json: cannot read" in capsys.readouterr().err
    assert main(["report", str(results), "-o", str(tmp_path / "x.txt")]) == 2
    assert "unknown report format '.txt'" in capsys.readouterr().err


def _changed() -> dict:
    doc = copy.deepcopy(current_doc())
    rag = doc["scenarios"][0]["variants"]["rag"]["metrics"]
    rag["contains"] = {"value": 0.6, "n": 3, "ci": [0.5, 0.7]}  # from 1.000 [1.000, 1.000]
    rag["latency_p95"] = {"value": 0.2, "n": 3, "ci": [0.15, 0.25]}  # faster: better
    del doc["scenarios"][0]["variants"]["baseline"]["metrics"]["latency_p95"]
    return doc


def test_compare_shows_changes_with_intervals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _write(tmp_path / "old.json", current_doc()), _write(tmp_path / "new.json", _changed())
    assert main(["compare", str(old), str(new)]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == "scenario variant metric old new change"
    assert "help<desk> rag contains 1.000 [1.000, 1.000] 0.600 [0.500, 0.700] -0.400 worse, intervals apart" in lines
    assert "help<desk> rag latency_p95 0.250 [0.200, 0.300] 0.200 [0.150, 0.250] -0.050 better" in lines
    assert "help<desk> baseline contains 0.333 [0.000, 1.000] 0.333 [0.000, 1.000] +0.000" in lines
    assert "help<desk> baseline latency_p95 0.250 [0.200, 0.300] (absent) - gone" in lines


def test_compare_fails_on_a_drop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _write(tmp_path / "old.json", current_doc()), _write(tmp_path / "new.json", _changed())
    assert main(["compare", str(old), str(new), "--fail-on-drop", "0.5"]) == 0
    assert main(["compare", str(old), str(new), "--fail-on-drop", "0.1"]) == 1
    out = capsys.readouterr().out
    assert "worse, intervals apart, DROP > 0.1" in out
    assert out.rstrip().endswith("1 metric(s) dropped by more than 0.1")


PLANTED = """\
llmopt: 1
scenario: planted
task: {cases: [{id: a, q: x, expected: x}]}
recipe: {template: "{{ q }}"}
model: {provider: ecko}
variants:
  base: {}
assertions:
  - {metric: exact_match, variant: base, min: lots}
  - {metric: exact_matc, variant: base, min: 0.5}
  - {metric: contains, variant: nobody, min: 0.5}
"""


def test_validate_finds_every_planted_problem_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs" / "more").mkdir(parents=True)
    (tmp_path / "specs" / "planted.yaml").write_text(PLANTED, encoding="utf-8")
    (tmp_path / "specs" / "more" / "second.yaml").write_text(
        PLANTED.replace("planted", "second").replace("ecko", "echo"), encoding="utf-8"
    )
    assert main(["validate", "specs"]) == 1
    out = capsys.readouterr().out
    for where in ("specs/planted.yaml:5:19: model.provider", "specs/planted.yaml:9:47: assertions[0].min",
                  "specs/planted.yaml:10:14: assertions[1].metric", "specs/planted.yaml:11:33: assertions[2].variant",
                  "specs/more/second.yaml:9:47: assertions[0].min", "specs/more/second.yaml:10:14: assertions[1].metric"):
        assert where in out, where
    assert "2 spec(s), 2 with problems" in out
