"""The HTML page and the Markdown summary, rendered from results documents with and
without the fields later versions add."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from report_docs import current_doc, empty_doc, extended_doc

from llmopt.report import ReportError, append_step_summary, load_results, write_report
from llmopt.report._markdown import render_markdown
from llmopt.report._page import render_html


def test_html_escapes_user_text_and_needs_nothing_from_outside() -> None:
    html = render_html(extended_doc())
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "help&lt;desk&gt;" in html
    for needle in ("<link", " src=", "@import", "url(", "https://"):
        assert needle not in html
    assert html.count("http://") == html.count('xmlns="http://www.w3.org/2000/svg"')


def test_html_shows_the_new_fields_when_present() -> None:
    html = render_html(extended_doc())
    for text in ("sha256:rag0123456789abcdef", "sha256:da7a5e7", "support@2", "mcnemar-exact",
                 "underpowered (needs n=40, MDE 0.700)", "0.062", "[-0.100, +0.900]", "flaky", "judge contains: pass",
                 "cites &lt;the&gt; policy", "<summary>support@2</summary><pre>Be &lt;brief&gt;.", "started 2026-11-26T16:00:00Z"):
        assert text in html, text


def test_html_without_the_new_fields() -> None:
    html = render_html(current_doc())
    assert "identity hash" in html and "sha256:" not in html
    assert html.count('<svg class="chart"') == 4
    assert "provider timed out after 30 s" in html
    assert re.search(r'<tr class="case-error">.*?q3', html)


def test_failing_cases_come_first_and_passes_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    import llmopt.report._html_cases as cases

    monkeypatch.setattr(cases, "MAX_PASSING_CASES", 0)
    monkeypatch.setattr(cases, "MAX_FAILED_CASES", 1)
    html = render_html(_baseline_checked(current_doc()))
    assert html.count('class="case-ok"') == 0
    assert html.count('class="case-failed"') == 1 and html.count('class="case-error"') == 1
    assert "1 failed cases not shown; 1 passing cases not shown" in html  # baseline: q3 and q2
    assert "2 passing cases not shown" in html  # rag: q1 and q2


def _baseline_checked(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with an assertion on its baseline too, so the baseline's misses are failures."""
    doc["scenarios"][0]["assertions"].append(
        {"id": "b", "variant": "baseline", "metric": "contains", "outcome": "failed", "observed": 1 / 3,
         "expected": ">= 0.5", "delta": None, "vs": None, "message": ""})
    return doc


def test_failed_cases_are_listed_before_passing_ones() -> None:
    html = render_html(_baseline_checked(current_doc()))
    rows = re.findall(r'<tr class="case-(\w+)"><td class="id">(q\d)', html)
    assert rows[:3] == [("failed", "q1"), ("failed", "q3"), ("ok", "q2")]  # baseline
    assert rows[3:] == [("error", "q3"), ("ok", "q1"), ("ok", "q2")]  # rag



def test_empty_results_render() -> None:
    assert "No scenario produced results." in render_html(empty_doc())
    assert "No assertions ran." in render_markdown(empty_doc())


def test_markdown_lists_failures_first_with_deltas_and_p_values() -> None:
    md = render_markdown(extended_doc())
    rows = [line for line in md.splitlines() if line.startswith("| ❌") or line.startswith("| ✅")]
    assert rows[0].startswith("| ❌ failed | help&lt;desk&gt; | rag | contains | 1.000 | &gt;= baseline + 0.9 | +0.500 |")
    assert "[-0.100, +0.900] | 0.062 |" in rows[0]
    assert rows[1].startswith("| ✅ passed")
    assert "| baseline | contains | 0.333 | [0.000, 1.000] | (baseline) | 3 | 0 | 0.0040 |" in md
    assert "| rag | contains | 1.000 | [1.000, 1.000] | +0.500 better | 3 | 1 | 0.0040 |" in md
    assert md.startswith("## llmopt ❌ 1 passed, 1 failed")


def test_the_plain_p_value_shows_when_no_correction_applied() -> None:
    doc = extended_doc()
    doc["scenarios"][0]["assertions"][0]["p_adjusted"] = None
    assert "[-0.100, +0.900] | 0.031 |" in render_markdown(doc)
    assert ">0.031<" in render_html(doc)


def test_markdown_without_the_new_fields_shows_dashes() -> None:
    md = render_markdown(current_doc())
    assert "| +0.500 | - | - |" in md


def test_markdown_is_cut_to_size() -> None:
    doc = current_doc()
    entry = doc["scenarios"][0]
    doc["scenarios"] = [dict(entry, scenario=f"s{i}") for i in range(200)]
    md = render_markdown(doc, max_chars=5000)
    assert len(md) <= 5000
    assert "Summary cut to fit" in md
    assert re.search(r"… and \d+ more assertions \(\d+ failed or errors\)", md)


def test_step_summary_is_appended(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n", encoding="utf-8")
    assert append_step_summary(current_doc(), {"GITHUB_STEP_SUMMARY": str(target)}) == target
    text = target.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## llmopt ❌")
    assert append_step_summary(current_doc(), {}) is None


def test_report_format_follows_the_suffix(tmp_path: Path) -> None:
    write_report(current_doc(), tmp_path / "r.md")
    write_report(current_doc(), tmp_path / "out" / "r.html")
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("## llmopt")
    assert (tmp_path / "out" / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(ReportError, match=r"r\.pdf: unknown report format '\.pdf'; use one of"):
        write_report(current_doc(), tmp_path / "r.pdf")


def test_load_results_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"llmopt": 1,\n "scenarios": [}', encoding="utf-8")
    with pytest.raises(ReportError, match=r"bad\.json:2:16: not JSON"):
        load_results(bad)
    other = tmp_path / "other.json"
    other.write_text("{}", encoding="utf-8")
    with pytest.raises(ReportError, match="not an llmopt results JSON"):
        load_results(other)


def test_write_reports_says_what_it_could_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmopt.report import builtin_report_formats, report_target, write_reports

    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "nowhere" / "summary.md"))
    formats = {f.name: f for f in builtin_report_formats()}
    targets = [report_target(str(p), formats) for p in (tmp_path / "taken" / "r.html", tmp_path / "ok.md")]
    lines = write_reports(current_doc(), targets)
    assert lines[0].startswith(f"report: could not write {tmp_path / 'taken' / 'r.html'}:")
    assert lines[1] == f"report: {tmp_path / 'ok.md'}"
    assert lines[2].startswith("could not append to $GITHUB_STEP_SUMMARY: ")


def test_the_baseline_is_the_most_compared_against_variant() -> None:
    from llmopt.report._doc import baseline_of

    variants = {"base": {}, "recipe": {}, "rag": {}, "hosted": {}}
    one_each = [{"vs": "rag"}, {"vs": "recipe"}, {"vs": "base"}, {"vs": None}]
    assert baseline_of({"variants": variants, "assertions": one_each}) == "base"  # tie: first written
    assert baseline_of({"variants": variants, "assertions": one_each + [{"vs": "rag"}]}) == "rag"
    assert baseline_of({"variants": variants, "assertions": [{"vs": None}]}) == "base"
    assert baseline_of({"variants": {}, "assertions": []}) is None


def test_the_run_total_counts_judges_and_retrieval_too() -> None:
    from llmopt.report import ResultsStore
    from llmopt.report._doc import run_usage

    doc = current_doc()
    variants = doc["scenarios"][0]["variants"]
    first, second = list(variants.values())[:2]
    model = sum(v["usage"]["cost_usd"] for v in variants.values())
    first["judge_usage"] = {"cost_usd": 0.5, "calls": 2}
    second["retrieval_usage"] = {"cost_usd": 0.25, "calls": 1, "input_tokens": 40, "cache_hits": 3}
    total = run_usage(doc)
    assert total["cost_usd"] == pytest.approx(model + 0.75)
    store = ResultsStore()
    store.merge(doc)
    assert store.usage_total().cost_usd == pytest.approx(model + 0.75)
    assert "retrieval cost $" in render_html(doc)
