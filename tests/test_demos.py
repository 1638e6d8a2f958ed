"""Few-shot demonstrations (``recipe.demos`` and the search's ``demos`` axis): drawn from
the training cases only, random / bootstrap / similar, as chat turns or ``{{ demos }}``,
the leakage check on the pool, and the spec's checks.

The model is a ``python`` function that logs every request's messages and answers a
case right when one of its demonstrations is about the same topic (the word before
"question" in the input): so demonstrations help exactly when they are similar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmopt.engine.cache import ResponseCache
from llmopt.engine.runner import Runner
from llmopt.errors import SpecError
from llmopt.registry import Registry, create_registry
from llmopt.search import run_search
from llmopt.spec import load_scenario

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

AGENT = """\
import hashlib
import json
import os

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.jsonl")


def answer(case, messages, params):
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps({"id": case["id"], "messages": messages, "params": params}) + "\\n")
    if params.get("teacher"):
        draw = int(hashlib.sha256(case["id"].encode()).hexdigest()[:8], 16) / 2**32
        return case["answer"] if draw < 0.5 else "no idea"
    shown = [m["content"] for m in messages[:-1] if m["role"] == "user"]
    shown += [messages[-1]["content"].split("Question:")[0]] if "Input:" in messages[-1]["content"] else []
    return case["answer"] if any(case["topic"] + " question" in text for text in shown) else "wrong"
"""

TOPICS = ["apple", "banana", "cherry", "damson", "elder", "fig"]


def _rows(prefix: str, n: int, start: int = 0) -> str:
    out = []
    for i in range(start, start + n):
        topic = TOPICS[i % len(TOPICS)]
        out.append(json.dumps({"id": f"{prefix}{i}", "question": f"{topic} question number {i}", "topic": topic,
                               "answer": f"{topic.upper()}"}))
    return "\n".join(out) + "\n"


def _project(folder: Path, spec: str, *, leak: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.py").write_text(AGENT, encoding="utf-8")
    train = _rows("t", 24)
    if leak:  # a training case whose text is a test case's
        train += json.dumps({"id": "t-leak", "question": "apple question number 1000", "topic": "apple",
                             "answer": "APPLE"}) + "\n"
    (folder / "train.jsonl").write_text(train, encoding="utf-8")
    (folder / "dev.jsonl").write_text(_rows("d", 12, 100), encoding="utf-8")
    test = _rows("e", 12, 200)
    if leak:
        test += json.dumps({"id": "e-leak", "question": "apple question number 1000", "topic": "apple",
                            "answer": "APPLE"}) + "\n"
    (folder / "test.jsonl").write_text(test, encoding="utf-8")
    path = folder / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


def spec_text(variants: str, *, template: str = "Question: {{ question }}", extra: str = "",
              task_extra: str = "  train: train.jsonl\n") -> str:
    return (
        "llmopt: 1\n"
        "scenario: s\n"
        "task:\n"
        "  dev_dataset: dev.jsonl\n"
        "  test_dataset: test.jsonl\n"
        f"{task_extra}"
        "  id: id\n"
        "  expected: answer\n"
        "  input: question\n"
        "recipe:\n"
        f"  template: {json.dumps(template)}\n"
        "model:\n"
        "  provider: python\n"
        "  id: agent.py:answer\n"
        "  options: {cache: true}\n"
        "variants:\n"
        "  baseline: {}\n"
        f"{variants}"
        "assertions:\n"
        "  - {metric: exact_match, min: 0}\n"
        f"{extra}"
    )


@pytest.fixture(scope="module")
def registry() -> Registry:
    return create_registry(entry_points=False)


def _calls(folder: Path) -> list[dict[str, Any]]:
    log = folder / "calls.jsonl"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def _demo_ids(call: dict[str, Any]) -> list[str]:
    """The topics and numbers of the demonstration turns of one logged request."""
    return [m["content"] for m in call["messages"][:-1] if m["role"] == "user"]


def _numbers(texts: list[str]) -> set[int]:
    return {int(text.rsplit(" ", 1)[1]) for text in texts}


def test_random_demos_are_a_seeded_sample_of_the_training_cases_as_earlier_turns(
    tmp_path: Path, registry: Registry
) -> None:
    path = _project(tmp_path, spec_text("  shots: {recipe: {demos: {k: 3, select: random, seed: 4}}}\n"))
    scenario = load_scenario(path, registry)
    result = Runner(registry).evaluate(scenario, "shots")
    calls = [c for c in _calls(tmp_path) if c["id"].startswith("e")]
    assert len(calls) == 12
    first = _demo_ids(calls[0])
    assert len(first) == 3 and all(_demo_ids(c) == first for c in calls)  # the same three for every case
    assert _numbers(first) <= set(range(24))  # training cases only (numbers 0-23)
    roles = [m["role"] for m in calls[0]["messages"]]
    assert roles == ["user", "assistant"] * 3 + ["user"]
    answers = [m["content"] for m in calls[0]["messages"] if m["role"] == "assistant"]
    assert all(a.isupper() for a in answers)  # the training cases' expected answers
    assert result.demos is not None and result.demos["select"] == "random" and len(result.demos["ids"]) == 3
    assert result.identity["demos"]["fixed"] == result.demos["ids"]
    again = Runner(registry).evaluate(load_scenario(path, registry), "shots")
    assert again.demos is not None and again.demos["ids"] == result.demos["ids"]


def test_similar_demos_are_the_nearest_training_cases_of_each_case(tmp_path: Path, registry: Registry) -> None:
    path = _project(tmp_path, spec_text("  near: {recipe: {demos: {k: 2, select: similar}}}\n"))
    scenario = load_scenario(path, registry)
    result = Runner(registry).evaluate(scenario, "near")
    base = Runner(registry).evaluate(scenario, "baseline")
    assert result.metrics["exact_match"].value == 1.0 and base.metrics["exact_match"].value == 0.0
    for call in (c for c in _calls(tmp_path) if c["id"].startswith("e") and len(c["messages"]) > 1):
        topic = call["messages"][-1]["content"].split()[1]
        assert all(text.split()[1] == topic for text in _demo_ids(call))
        assert _numbers(_demo_ids(call)) <= set(range(24))
    assert result.demos is not None and "ids" not in result.demos and result.demos["pool"] == 24


def test_bootstrap_keeps_the_first_training_cases_the_teacher_gets_right_with_its_answers(
    tmp_path: Path, registry: Registry
) -> None:
    teacher = "{provider: python, id: agent.py:answer, params: {teacher: true}, options: {cache: true}}"
    variant = f"  boot: {{recipe: {{demos: {{k: 4, select: bootstrap, metric: exact_match, teacher: {teacher}}}}}}}\n"
    path = _project(tmp_path, spec_text(variant))
    result = Runner(registry, ResponseCache(tmp_path / "cache")).evaluate(load_scenario(path, registry), "boot")
    assert result.demos is not None
    tried, right = result.demos["bootstrap"]["tried"], result.demos["bootstrap"]["right"]
    assert right == 4 and tried >= 4
    asked = [c for c in _calls(tmp_path) if c["params"].get("teacher")]
    assert len(asked) == tried and all(c["id"].startswith("t") for c in asked)  # training cases only
    assert result.demos_usage is not None and result.demos_usage.calls == tried  # counted, beside the variant's own
    shown = {d["id"]: d["answer"] for d in result.demos["shown"]}
    assert set(shown) <= {c["id"] for c in asked} and all(a.isupper() for a in shown.values())
    # A rerun with the response cache asks the teacher nothing.
    before = len(_calls(tmp_path))
    again = Runner(registry, ResponseCache(tmp_path / "cache")).evaluate(load_scenario(path, registry), "boot")
    assert len(_calls(tmp_path)) == before and again.demos is not None and again.demos["ids"] == result.demos["ids"]
    assert again.demos_usage is not None and again.demos_usage.calls == 0 and again.demos_usage.cache_hits == tried
    assert again.to_json()["demos_usage"]["cache_hits"] == tried


def test_bootstrap_says_when_it_found_fewer_than_k(tmp_path: Path, registry: Registry) -> None:
    teacher = "{provider: python, id: agent.py:answer, params: {teacher: true}, options: {cache: true}}"
    variant = f"  boot: {{recipe: {{demos: {{k: 20, select: bootstrap, metric: exact_match, teacher: {teacher}}}}}}}\n"
    result = Runner(registry).evaluate(load_scenario(_project(tmp_path, spec_text(variant)), registry), "boot")
    assert result.demos is not None and result.demos["bootstrap"]["tried"] == 24
    assert result.demos["bootstrap"]["right"] < 20
    assert any("bootstrap found" in note and "of k=20" in note for note in result.demos["notes"])


def test_a_training_case_equal_to_an_evaluated_case_is_never_shown_and_is_counted(
    tmp_path: Path, registry: Registry
) -> None:
    path = _project(tmp_path, spec_text("  shots: {recipe: {demos: {k: 25, select: random}}}\n"), leak=True)
    result = Runner(registry).evaluate(load_scenario(path, registry), "shots")
    assert result.demos is not None and "t-leak" not in result.demos["ids"] and result.demos["pool"] == 24
    assert any("left out of the demonstrations" in n and "t-leak" in n for n in result.demos["notes"])


def test_a_template_using_demos_gets_them_as_a_block_and_no_extra_turns(tmp_path: Path, registry: Registry) -> None:
    template = "{{ demos }}\n\nQuestion: {{ question }}"
    path = _project(tmp_path, spec_text("  near: {recipe: {demos: {k: 2, select: similar}}}\n", template=template))
    result = Runner(registry).evaluate(load_scenario(path, registry), "near")
    call = next(c for c in _calls(tmp_path) if c["id"] == "e200" and "Input:" in c["messages"][-1]["content"])
    assert len(call["messages"]) == 1
    assert call["messages"][0]["content"].count("Input: cherry question") == 2
    assert "Answer: CHERRY" in call["messages"][0]["content"]
    assert result.metrics["exact_match"].value == 1.0


def test_demos_without_training_cases_or_bootstrap_without_a_metric_are_collection_errors(
    tmp_path: Path, registry: Registry
) -> None:
    variants = ("  shots: {recipe: {demos: {k: 2}}}\n"
                "  boot: {recipe: {demos: {k: 2, select: bootstrap}}}\n"
                "  odd: {recipe: {demos: {k: 2, select: nearest, retriever: tfidff}}}\n")
    path = _project(tmp_path, spec_text(variants, task_extra=""))
    with pytest.raises(SpecError) as raised:
        load_scenario(path, registry)
    text = str(raised.value)
    assert "variants.shots.recipe.demos" in text and "demos come from the training cases only" in text
    assert "variants.boot.recipe.demos" in text and "bootstrap demos need the metric" in text
    assert "variants.odd.recipe.demos.select" in text and "nearest" in text
    assert "unknown retriever 'tfidff'" in text


SEARCH = """\
search:
  axes:
    demos: {k: [0, 2], select: [random, similar]}
  objective: {metric: exact_match}
  confirm: {vs: baseline, min_delta: 0.2}
"""


def test_the_demos_axis_searches_k_and_select_on_dev_with_training_demos_only(tmp_path: Path, registry: Registry) -> None:
    path = _project(tmp_path, spec_text("", extra=SEARCH))
    scenario = load_scenario(path, registry)
    assert scenario.search is not None
    levels = [c.levels["demos"] for c in scenario.search.candidates]
    assert levels == [{"k": 0}, {"k": 2, "select": "random"}, {"k": 2, "select": "similar"}]
    outcome = run_search(Runner(registry), scenario)
    assert outcome.winner is not None and outcome.winner.candidate.levels["demos"]["select"] == "similar"
    asked = _calls(tmp_path)
    assert {c["id"][0] for c in asked} == {"d"}  # the search reads dev only
    assert all(_numbers(_demo_ids(c)) <= set(range(24)) for c in asked)  # demonstrations from train only
    doc = outcome.to_json()
    assert doc["generated"] == {"candidates": 2, "tried": 2}
    assert doc["space"]["axes"]["demos"] == ["k=0", "k=2 random", "k=2 similar"]
    assert doc["splits"]["train"]["n"] == 24 and doc["splits"]["dev"]["n"] == 12
    similar = next(c for c in doc["candidates"] if c["levels"]["demos"] == "k=2 similar")
    assert similar["generated"]["demos"]["select"] == "similar"
    random_run = next(c for c in doc["candidates"] if c["levels"]["demos"] == "k=2 random")
    assert len(random_run["generated"]["demo_ids"]) == 2
    winner = outcome.winner.generated
    assert winner is not None and winner.demos is not None and winner.fixed_demos is None


def test_a_bootstrap_axis_judges_by_the_objective_and_its_values_are_checked(tmp_path: Path, registry: Registry) -> None:
    extra = SEARCH.replace("select: [random, similar]", "select: [bootstrap], retriever: nope")
    path = _project(tmp_path, spec_text("", extra=extra))
    with pytest.raises(SpecError):  # retriever is only read by similar, but must still name one
        load_scenario(path, registry)
    path = _project(tmp_path, spec_text("", extra=SEARCH.replace("select: [random, similar]", "select: [bootstrap]")))
    scenario = load_scenario(path, registry)
    assert scenario.search is not None
    demos = scenario.search.candidates[1].variant.recipe.demos
    assert demos is not None and demos.select == "bootstrap" and demos.metric == "exact_match"


def test_generated_axes_are_checked_at_their_own_keys_once(tmp_path: Path, registry: Registry) -> None:
    extra = SEARCH.replace("select: [random, similar]}", "select: [random, similar], retriever: tfidx}\n"
                           "    instructions: {propose: 2, proposer: {provider: pythn}}")
    path = _project(tmp_path, spec_text("", extra=extra, task_extra=""))
    with pytest.raises(SpecError) as raised:
        load_scenario(path, registry)
    lines = str(raised.value).splitlines()[1:]
    assert len(lines) == 4, lines
    text = "\n".join(lines)
    assert ":21:5: search.axes.demos: demos come from the training cases only" in text
    assert "search.axes.demos.retriever: unknown retriever 'tfidx'" in text
    assert ":22:5: search.axes.instructions: instructions are proposed from the training cases only" in text
    assert "search.axes.instructions.proposer.provider: unknown provider 'pythn'" in text


def test_a_demos_search_under_pytest_confirms_its_winner_on_test_with_training_demos_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nllmopt_cache_dir = .cache-llmopt\n")
    specs = pytester.path / "specs"
    _project(specs, spec_text("", extra=SEARCH))
    result = pytester.runpytest("specs", "-p", "no:cacheprovider", "--llmopt-json=out.json")
    result.assert_outcomes(passed=4)  # baseline >= 0, search >= 0, the search item, its confirmation
    doc = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    search = doc["scenarios"][0]["search"]
    assert search["confirmation"]["outcome"] == "passed" and search["generated"]["candidates"] == 2
    winner = doc["scenarios"][0]["variants"]["search"]
    assert winner["demos"]["select"] == "similar" and winner["metrics"]["exact_match"]["value"] == 1.0
    asked = _calls(specs)
    assert all(_numbers(_demo_ids(c)) <= set(range(24)) for c in asked)  # never a dev or test case as a demo
    assert "generated: 2 candidates with generated parts, 2 of them tried on dev" in result.stdout.str()


def test_validate_reads_dev_and_test_files_and_names_a_bad_row(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = _project(tmp_path, spec_text("  shots: {recipe: {demos: {k: 2}}}\n", extra=SEARCH))
    run = subprocess.run([sys.executable, "-m", "llmopt.cli", "validate", str(path)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0 and "1 spec(s), 0 with problems" in run.stdout, run.stdout + run.stderr
    with (tmp_path / "dev.jsonl").open("a", encoding="utf-8") as dev:
        dev.write('{"question": "no id here"}\n')
    run = subprocess.run([sys.executable, "-m", "llmopt.cli", "validate", str(path)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 1 and "dev.jsonl:13" in run.stdout, run.stdout + run.stderr
