"""The search section (``scenarios[].search``) in every built-in report: the leaderboard
best first in the objective's direction, dropped candidates marked, the winner's dev
delta beside its test delta, effects, interactions, the confirmation; and a document
without a search rendered as before."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from report_docs import current_doc, extended_doc

from llmopt.report import summary_lines
from llmopt.report._markdown import render_markdown
from llmopt.report._page import render_html
from llmopt.report._search import leaderboard

EVIL = "<img src=x onerror=alert(1)>"


def _cand(name: str, levels: dict[str, str], rounds: list[tuple[int, int, float]], *, dropped: int | None = None,
          same_as: str | None = None, error: str | None = None) -> dict[str, Any]:
    return {
        "name": name, "levels": levels, "same_as": same_as, "dropped_in": dropped, "error": error,
        "overrides": {"recipe": {"use": levels.get("recipe.use")}, "retrieval": {"top_k": levels.get("retrieval.top_k")}},
        "rounds": [{"round": r, "n": n, "value": v, "ci": [round(v - 0.1, 3), round(v + 0.1, 3)], "se": 0.05}
                   for r, n, v in rounds],
    }


def halving_search() -> dict[str, Any]:
    """Halving over 2 x 3 candidates: c4 wins, c3 repeats c2, c1 and c6 go in round 1."""
    g, c = "grounded-qa@1", "concise-qa@1"
    candidates = [
        _cand("c1", {"recipe.use": g, "retrieval.top_k": "1"}, [(1, 8, 0.5)], dropped=1),
        _cand("c2", {"recipe.use": g, "retrieval.top_k": "2"}, [(1, 8, 0.625), (2, 24, 0.58)], dropped=2),
        _cand("c3", {"recipe.use": g, "retrieval.top_k": "4"}, [], dropped=2, same_as="c2"),
        _cand("c4", {"recipe.use": c, "retrieval.top_k": "1"}, [(1, 8, 0.75), (2, 24, 0.67), (3, 36, 0.61)]),
        _cand("c5", {"recipe.use": c, "retrieval.top_k": "2"}, [(1, 8, 0.7), (2, 24, 0.62), (3, 36, 0.55)]),
        _cand("c6", {"recipe.use": c, "retrieval.top_k": EVIL}, [(1, 8, 0.25)], dropped=1),
    ]
    return {
        "from": "rag",
        "space": {"axes": {"recipe.use": [g, c], "retrieval.top_k": [1, 2, EVIL]}, "size": 6},
        "strategy": {"name": "halving", "eta": 3, "min_cases": 8, "trials": None, "seed": 7},
        "objective": {"metric": "contains", "key": "contains", "args": {}, "higher_is_better": True},
        "splits": {"seed": 7, "dev": {"n": 36, "ids": []}, "test": {"n": 24, "ids": []}, "train": {"n": 0, "ids": []}},
        "candidates": candidates,
        "rounds": [{"round": 1, "n": 8, "candidates": 6, "kept": 3}, {"round": 2, "n": 24, "candidates": 3, "kept": 2},
                   {"round": 3, "n": 36, "candidates": 2, "kept": 2}],
        "winner": {"name": "c4", "overrides": candidates[3]["overrides"], "levels": candidates[3]["levels"],
                   "dev": {"n": 36, "value": 0.61, "ci": [0.45, 0.75], "vs": "baseline", "vs_value": 0.3,
                           "delta": 0.31, "delta_ci": [0.12, 0.48]}},
        "effects": [
            {"axis": "retrieval.top_k", "level": "2", "reference": "1", "delta": 0.1, "ci": [-0.02, 0.22], "n": 36},
            {"axis": "recipe.use", "level": c, "reference": g, "delta": 0.2, "ci": [0.05, 0.35], "n": 36},
        ],
        "interactions": [{"axes": ["recipe.use", "retrieval.top_k"], "levels": [c, "2"], "delta": 0.03,
                          "ci": [-0.1, 0.16], "n": 36}],
        "confirmation": {"variant": "search", "vs": "baseline", "metric": "contains", "n": 24, "value": 0.58,
                         "vs_value": 0.29, "delta": 0.29, "ci": [0.08, 0.5], "p": 0.004, "test": "exact McNemar",
                         "confidence": 0.95, "min_delta": 0.05, "outcome": "passed", "looks": 1,
                         "note": "one candidate reached the test split: no correction for the 6 candidates is needed"},
        "usage": {"calls": 210, "cache_hits": 12, "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0},
        "stopped": None,
        "notes": ["dev intervals are selection-biased: the winner was picked on them"],
    }


def lower_search() -> dict[str, Any]:
    """A grid on a lower-is-better objective: c2 (0.4) beats c3 (0.6) beats c1 (0.9)."""
    search = halving_search()
    levels = [{"model.params.temperature": t} for t in ("0", "0.7", "1")]
    search |= {
        "space": {"axes": {"model.params.temperature": [0, 0.7, 1]}, "size": 3},
        "strategy": {"name": "grid", "eta": None, "min_cases": None, "trials": None, "seed": 7},
        "objective": {"metric": "latency_p95", "key": "latency_p95", "args": {}, "higher_is_better": False},
        "candidates": [_cand(f"c{i + 1}", lv, [(1, 36, v)]) for i, (lv, v) in enumerate(zip(levels, (0.9, 0.4, 0.6), strict=True))],
        "rounds": [{"round": 1, "n": 36, "candidates": 3, "kept": 3}],
        "effects": [
            {"axis": "model.params.temperature", "level": "0.7", "reference": "0", "delta": -0.5, "ci": [-0.7, -0.3], "n": 36},
            {"axis": "model.params.temperature", "level": "1", "reference": "0", "delta": 0.2, "ci": [0.1, 0.3], "n": 36},
        ],
        "interactions": [],
    }
    search["winner"] = {"name": "c2", "overrides": {}, "levels": levels[1],
                        "dev": {"n": 36, "value": 0.4, "ci": [0.3, 0.5], "vs": "baseline", "vs_value": 0.9,
                                "delta": -0.5, "delta_ci": [-0.6, -0.4]}}
    search["confirmation"] |= {"metric": "latency_p95", "delta": -0.45, "ci": [-0.55, -0.35], "looks": 3}
    return search


def stopped_search() -> dict[str, Any]:
    """Random trials stopped by the budget: 12 candidates, no confirmation run."""
    search = halving_search()
    search |= {
        "strategy": {"name": "random", "eta": None, "min_cases": None, "trials": 20, "seed": 3},
        "candidates": [_cand(f"c{i}", {"recipe.use": "grounded-qa@1", "retrieval.top_k": str(i)}, [(1, 36, i / 20)])
                       for i in range(1, 13)],
        "rounds": [{"round": 1, "n": 36, "candidates": 12, "kept": 12}],
        "effects": [], "interactions": [],
        "stopped": "the budget of 500 calls was reached after 12 of 20 trials; the best so far is kept",
    }
    search["winner"] = {"name": "c12", "overrides": {}, "levels": {}, "dev": {"n": 36, "value": 0.6, "ci": [0.45, 0.75]}}
    search["confirmation"] = {"variant": "search", "vs": "baseline", "metric": "contains", "n": None, "value": None,
                              "vs_value": None, "delta": None, "ci": None, "p": None, "test": None, "confidence": 0.95,
                              "min_delta": 0.05, "outcome": None, "looks": 0, "note": None}
    return search


def _doc(search: dict[str, Any] | None) -> dict[str, Any]:
    doc = extended_doc()
    if search is not None:
        doc["scenarios"][0]["search"] = search
    return doc


def _rows(lines: list[str], names: set[str], prefix: str) -> list[str]:
    """The candidate names of the leaderboard rows, in their order."""
    pattern = re.compile(prefix + r"(c\d+)\b")
    return [m.group(1) for line in lines if (m := pattern.match(line)) and m.group(1) in names]


# The terminal summary


def _terminal(search: dict[str, Any] | None) -> list[str]:
    return list(summary_lines(_doc(search), 400))


def test_terminal_leaderboard_is_best_first_with_dropped_and_repeated_candidates_marked() -> None:
    lines = _terminal(halving_search())
    start = lines.index("  search:")
    assert start > next(i for i, line in enumerate(lines) if line.startswith("  variant "))  # after the variant table
    block = lines[start:]
    assert _rows(block, {f"c{i}" for i in range(1, 7)}, "    ") == ["c4", "c5", "c2", "c3", "c1", "c6"]
    row = {name: next(line for line in block if line.startswith(f"    {name} ")) for name in ("c1", "c3", "c4", "c5", "c6")}
    assert row["c4"].endswith("kept (winner)") and "0.610" in row["c4"] and "[0.510, 0.710]" in row["c4"]
    assert row["c5"].endswith("kept") and "winner" not in row["c5"]
    assert row["c1"].endswith("dropped in round 1") and row["c3"].endswith("dropped in round 2")
    assert "= c2" in row["c3"]
    head = next(line for line in block if line.startswith("    candidate "))
    assert head.index("value") == row["c4"].index("0.610") == row["c1"].index("0.500")  # columns aligned
    assert head.index("retrieval.top_k") == row["c6"].index(EVIL) == row["c3"].index("4 ")


def test_terminal_shows_the_winners_curse_effects_and_the_confirmation() -> None:
    text = "\n".join(_terminal(halving_search()))
    for line in (
        "    halving (eta 3, min_cases 8, seed 7) on contains (higher is better), from variant rag",
        "    space: 6 candidates: recipe.use (grounded-qa@1, concise-qa@1) x retrieval.top_k (1, 2, " + EVIL + ")",
        "    splits: dev 36, test 24, train 0 cases (seed 7)",
        "    dev intervals are selection-biased: the winner was picked on them",
        "    winner c4: dev +0.310 [+0.120, +0.480] vs test +0.290 [+0.080, +0.500] (against baseline)",
        "    confirmation on the test split: search vs baseline, n=24: delta +0.290 95% CI [+0.080, +0.500], p=0.004"
        " (exact McNemar), asked min_delta 0.050: PASSED; look 1 on this test split",
        "    confirmation note: one candidate reached the test split: no correction for the 6 candidates is needed",
        "    search usage: 210 calls, 12 from the cache, $0.0000, 0 input and 0 output tokens",
    ):
        assert "\n" + line + "\n" in text, line
    assert text.count("selection-biased") == 1  # the search's own note is not said twice
    effects = text.split("effects (each level")[1].split("interactions")[0].splitlines()[1:]
    assert effects[0].split() == ["axis", "level", "vs", "reference", "delta", "95%", "CI", "n", "change"]
    assert effects[1].split() == ["retrieval.top_k", "2", "vs", "1", "+0.100", "[-0.020,", "+0.220]", "36", "unclear"]
    assert effects[2].split()[-1] == "better"
    interaction = text.split("interactions (two-axis contrasts):\n")[1].splitlines()[1]
    assert interaction.split() == ["recipe.use", "x", "retrieval.top_k", "concise-qa@1", "x", "2", "+0.030",
                                   "[-0.100,", "+0.160]", "36"]
    assert "stopped:" not in text


def test_terminal_lower_is_better_puts_the_lowest_first() -> None:
    lines = _terminal(lower_search())
    assert _rows(lines, {"c1", "c2", "c3"}, "    ") == ["c2", "c3", "c1"]
    text = "\n".join(lines)
    assert "on latency_p95 (lower is better)" in text
    effects = text.split("effects (each level")[1].split("confirmation")[0].splitlines()
    assert effects[2].split()[-1] == "better" and effects[2].split()[4] == "-0.500"  # lower: a drop is better
    assert effects[3].split()[-1] == "worse"
    assert "winner c2: dev -0.500 [-0.600, -0.400] vs test -0.450 [-0.550, -0.350]" in text
    assert "look 3 on this test split" in text and "interactions" not in text


def test_terminal_search_stopped_by_the_budget_shows_the_top_10() -> None:
    lines = _terminal(stopped_search())
    names = {f"c{i}" for i in range(1, 13)}
    assert _rows(lines, names, "    ") == [f"c{i}" for i in range(12, 2, -1)]
    assert "    ... 2 more" in lines
    assert "    stopped: the budget of 500 calls was reached after 12 of 20 trials; the best so far is kept" in lines
    assert "    confirmation on the test split: search vs baseline: not run" in lines
    assert "    winner c12: dev 0.600 [0.450, 0.750] vs test: not confirmed" in lines
    assert "    random (trials 20, seed 3) on contains (higher is better), from variant rag" in lines


def test_terminal_search_fits_a_narrow_terminal() -> None:
    lines = list(summary_lines(_doc(halving_search()), 80))
    assert all(len(line) <= 80 for line in lines)
    assert "PASSED; look 1 on this test split" in " ".join(" ".join(lines).split())


# The Markdown summary


def _md_rows(md: str) -> list[str]:
    return re.findall(r"^\| (c\d+) \|", md, flags=re.M)


def test_markdown_leaderboard_effects_and_confirmation() -> None:
    md = render_markdown(_doc(halving_search()))
    search = md.split("#### Search")[1]
    assert _md_rows(search) == ["c4", "c5", "c2", "c3", "c1", "c6"]
    assert "| candidate | recipe.use | retrieval.top_k | round | n | value | 95% CI | dropped / kept |" in search
    assert "| c4 | concise-qa@1 | 1 | 3 | 36 | 0.610 | [0.510, 0.710] | kept (winner) |" in search
    assert "| c3 | grounded-qa@1 | 4 | - | - | = c2 | - | dropped in round 2 |" in search
    assert "| c1 | grounded-qa@1 | 1 | 1 | 8 | 0.500 | [0.400, 0.600] | dropped in round 1 |" in search
    assert "_dev intervals are selection-biased: the winner was picked on them_" in search
    assert "\nwinner c4: dev +0.310 [+0.120, +0.480] vs test +0.290 [+0.080, +0.500] (against baseline)\n" in search
    assert "| retrieval.top_k | 2 vs 1 | +0.100 | [-0.020, +0.220] | 36 | unclear |" in search
    assert "| recipe.use x retrieval.top_k | concise-qa@1 x 2 | +0.030 | [-0.100, +0.160] | 36 |" in search
    assert "PASSED; look 1 on this test split" in search
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert search.index("| c4 |") < search.index("winner c4") < search.index("| retrieval.top_k | 2 vs 1") < search.index(
        "confirmation on the test split") < search.index("search usage")


def test_markdown_lower_is_better_and_a_stopped_search() -> None:
    assert _md_rows(render_markdown(_doc(lower_search())).split("#### Search")[1]) == ["c2", "c3", "c1"]
    md = render_markdown(_doc(stopped_search())).split("#### Search")[1]
    assert _md_rows(md) == [f"c{i}" for i in range(12, 2, -1)]
    assert "… 2 more candidates in the HTML report" in md
    assert "stopped: the budget of 500 calls was reached" in md and ": not run" in md


# The HTML report


def _html_search(search: dict[str, Any]) -> str:
    html = render_html(_doc(search))
    return html.split("<h3>Search")[1].split("<h3>Run identity")[0]


def test_html_leaderboard_chart_and_table_best_first_with_the_winner_marked() -> None:
    part = _html_search(halving_search())
    chart = part.split("<svg")[1].split("</svg>")[0]
    assert "selection-biased" in chart
    labels = re.findall(r'class="lbl">(c\d+)[ <]', chart)
    assert labels == ["c4", "c5", "c2", "c1", "c6"]  # c3 repeats c2: not drawn again
    assert "c4 (winner)</text>" in chart and chart.count('class="dot winner"') == 1
    assert chart.count('class="dot dropped"') == 3  # c2, c1, c6
    table = part.split("<table>")[1]
    assert re.findall(r"<tr><td>(c\d+)", table) == ["c4", "c5", "c2", "c3", "c1", "c6"]
    assert '<td>c4 <span class="badge winner">WINNER</span></td>' in table
    assert "<td>dropped in round 1</td>" in table and '<td class="num">= c2</td>' in table
    assert part.index("selection-biased") < part.index("<table>")


def test_html_effects_forest_plot_and_confirmation() -> None:
    part = _html_search(halving_search())
    forest = part.split("<h4>Effects")[1].split("</svg>")[0]
    rows = re.findall(r'class="lbl">([^<]+)</text>', forest)
    assert rows == ["top_k=2 vs 1", "use=concise-qa@1 vs g…"]  # one row per axis level, in the JSON's order
    assert 'class="zero"' in forest  # the interval of top_k=2 spans 0
    assert forest.count('class="dot up"') == 2
    confirmation = part.split("<h4>Confirmation on the test split</h4>")[1]
    assert '<span class="badge passed">PASSED</span>' in confirmation
    assert '<td class="num">95% [+0.080, +0.500]</td>' in confirmation and "exact McNemar" in confirmation
    assert "one candidate reached the test split" in confirmation
    assert "<h4>Interactions" in part and "210 calls" in part


def test_html_draws_the_winners_dev_change_beside_its_test_change() -> None:
    part = _html_search(halving_search())
    curse = part.split("<strong>winner c4: dev +0.310")[1].split("</svg>")[0]
    assert "winner c4 vs baseline: dev and test change" in curse
    assert re.findall(r'class="lbl">([^<]+)</text>', curse) == ["dev: selection-biased", "test: confirmation"]
    assert "+0.310 [+0.120, +0.480]" in curse and "+0.290 [+0.080, +0.500]" in curse
    assert "dev and test change" not in _html_search(stopped_search())  # nothing confirmed: nothing to compare


def test_html_escapes_a_malicious_candidate_value() -> None:
    html = render_html(_doc(halving_search()))
    assert "<img" not in html and "onerror=alert(1)&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the leaderboard cell and the winner's... space line
    for needle in ("<script", "<link", "@import", "url(", "https://"):
        assert needle not in html


def test_html_lower_is_better_and_stopped() -> None:
    lower = _html_search(lower_search())
    assert re.findall(r'class="lbl">(c\d+)[ <]', lower.split("</svg>")[0]) == ["c2", "c3", "c1"]
    assert 'data-better="lower"' in lower
    forest = lower.split("<h4>Effects")[1].split("</svg>")[0]
    assert forest.count('class="dot up"') == 1 and forest.count('class="dot down"') == 1
    stopped = _html_search(stopped_search())
    assert '<p class="err">stopped: the budget of 500 calls' in stopped
    assert '<span class="badge notrun">NOT RUN</span>' in stopped
    assert len(re.findall(r"<tr><td>c\d+", stopped)) == 12  # the HTML has every candidate


# A document without a search


@pytest.mark.parametrize("doc", [current_doc, extended_doc])
def test_a_document_without_search_renders_as_before(doc: Any) -> None:
    plain = doc()
    nulled = copy.deepcopy(plain)
    nulled["scenarios"][0]["search"] = None
    for render in (render_html, render_markdown, lambda x: "\n".join(summary_lines(x, 400))):
        text = render(plain)
        assert render(nulled) == text
        assert "search" not in text.lower().replace("research", "")
    assert ".dot.winner" not in render_html(plain)


def test_the_search_only_adds_its_own_block() -> None:
    plain, searched = _doc(None), _doc(halving_search())
    without, with_search = list(summary_lines(plain, 400)), list(summary_lines(searched, 400))
    start, end = with_search.index("  search:"), with_search.index("")
    assert with_search[:start] + with_search[end:] == without
    md = render_markdown(searched)
    assert md[: md.index("#### Search")] == render_markdown(plain)  # the search closes its scenario's block
    html = render_html(searched)
    section = html[html.index("<h3>Search") : html.index("<h3>Run identity")]
    from llmopt.report._search_html import CSS

    assert html.replace(section, "").replace(CSS, "", 1) == render_html(plain)


def test_leaderboard_ties_keep_the_space_order() -> None:
    search = lower_search()
    for c in search["candidates"]:
        c["rounds"][0]["value"] = 0.5
    assert [c["name"] for c in leaderboard(search)] == ["c1", "c2", "c3"]


def test_a_candidate_that_could_not_be_evaluated_comes_last_with_its_error() -> None:
    search = lower_search()
    search["candidates"].insert(0, _cand("c0", {"model.params.temperature": "2"}, [], error="provider refused <temperature>"))
    lines = _terminal(search)
    assert _rows(lines, {"c0", "c1", "c2", "c3"}, "    ") == ["c2", "c3", "c1", "c0"]
    assert next(line for line in lines if line.startswith("    c0 ")).endswith("error: provider refused <temperature>")
    html = _html_search(search)
    assert "<td>error: provider refused &lt;temperature&gt;</td>" in html
    assert re.findall(r'class="lbl">(c\d+)[ <]', html.split("</svg>")[0]) == ["c2", "c3", "c1"]


def generated_search() -> dict[str, Any]:
    """The halving search with c4 given a proposed instruction and c5 demonstrations."""
    search = halving_search()
    search["candidates"][3]["generated"] = {"proposal": 2, "instruction": "Answer in one sentence, from the page."}
    search["candidates"][4]["generated"] = {"demos": {"k": 4, "select": "bootstrap"}, "demo_ids": ["t1", "t7"]}
    search["generated"] = {"candidates": 3, "tried": 2, "proposals": {
        "counts": {"proposed": 3, "kept": 2, "dropped": 1},
        "items": [
            {"number": 1, "round": 1, "text": "Be brief.", "dropped": None, "train_score": 0.5},
            {"number": 2, "round": 1, "text": "Answer in one sentence, from the page.", "dropped": None, "train_score": 0.75},
            {"number": 3, "round": 2, "text": EVIL, "dropped": "breaks a guardrail: forbidden 'onerror'", "train_score": None},
        ]}}
    return search


def test_every_format_counts_the_generated_candidates_and_shows_what_the_winner_was_given() -> None:
    lines = _terminal(generated_search())
    text = "\n".join(lines)
    assert "generated: 3 candidates with generated parts, 2 of them tried on dev" in text
    assert "instructions: 3 proposed, 2 kept, 1 dropped (proposal 3: breaks a guardrail" in text
    assert "winner's instruction (proposal 2): Answer in one sentence, from the page." in text
    md = render_markdown(_doc(generated_search()))
    assert "generated: 3 candidates with generated parts" in md and "winner's instruction (proposal 2)" in md
    part = _html_search(generated_search())
    assert "2 of them tried on dev" in part and "the proposed instructions" in part
    assert "<b>proposal 3</b> (round 2, dropped: breaks a guardrail" in part
    assert EVIL not in part and "&lt;img src=x onerror=alert(1)&gt;" in part
    demos = generated_search()
    demos["winner"]["name"] = "c5"
    assert "winner's demonstrations: k=4 bootstrap from train: t1, t7" in "\n".join(_terminal(demos))
    assert not [line for line in _terminal(halving_search()) if "generated:" in line]
