"""Proposed instructions (llmopt.search._propose): the proposer's requests and rounds,
reproducibility from the response cache, the guardrails and duplicates dropped with
their reasons, the failures round, usage and the search's budget.

Both models are one in-process fake provider (``fake``), which logs every request it
is sent: ``writer`` (the proposer) answers from a script by the proposal number in its
prompt; ``student`` (the model under test) answers a ticket's queue right when its
system message says "queue name" and the ticket is a billing one, else "wrong".
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

from llmopt.dataset import Case, load_training_cases
from llmopt.engine.budget import CallLimit
from llmopt.engine.cache import ResponseCache
from llmopt.engine.runner import Runner
from llmopt.errors import BudgetExceeded, ProviderError
from llmopt.provider import ProviderBase, Request, Response
from llmopt.registry import Registry, create_registry
from llmopt.search._propose import Proposals, ProposingStopped, clean_proposal, propose_instructions
from llmopt.spec import ModelSpec, ProposeSpec, Scenario, VariantSpec, load_scenario
from llmopt.spec._model import Guardrails

QUEUES = ["billing", "tech", "account"]

SPEC = """\
llmopt: 1
scenario: tickets
description: Route support tickets to the right queue
task:
  dev_dataset: dev.jsonl
  test_dataset: test.jsonl
  train: train.jsonl
  id: id
  expected: queue
  input: text
recipe:
  system: "Route the ticket."
  template: "Ticket: {{ text }}"
model:
  provider: fake
  id: student
  params: {temperature: 0, max_tokens: 4}
variants:
  baseline: {}
assertions:
  - {metric: exact_match, min: 0}
"""

Script = Callable[[int, str], str]


def default_script(number: int, prompt: str) -> str:
    return f"Reply with the queue name only, proposal {number}."


@dataclass
class Fake(ProviderBase):
    """One model of the fake provider: answers and logs what it was sent."""

    model: str
    log: list[tuple[str, Request]]
    script: Script
    fail: BaseException | None = None
    cacheable: bool = True
    concurrency: int = 4

    def identity(self) -> Mapping[str, Any]:
        return {"fake": self.model}

    async def generate(self, request: Request) -> Response:
        self.log.append((self.model, request))
        if self.fail is not None:
            raise self.fail
        text = self._answer(request)
        return Response(text=text, input_tokens=len(request.prompt.split()), output_tokens=len(text.split()), cost_usd=0.001)

    def _answer(self, request: Request) -> str:
        if self.model == "student":
            system = next((m["content"] for m in request.messages if m["role"] == "system"), "")
            right = "queue name" in system and request.case.expected == "billing"
            return str(request.case.expected) if right else "wrong"
        found = re.search(r"Write instruction number (\d+)", request.prompt)
        assert found is not None, request.prompt
        return self.script(int(found.group(1)), request.prompt)


@dataclass
class FakeType:
    name: str = "fake"
    log: list[tuple[str, Request]] = field(default_factory=list)
    script: Script = default_script
    fail: BaseException | None = None

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        return []

    def create(self, spec: ModelSpec, base_dir: Path) -> Fake:
        return Fake(spec.id or "", self.log, self.script, self.fail if spec.id == "writer" else None)

    def sent(self, model: str = "writer") -> list[Request]:
        return [r for m, r in self.log if m == model]


def _rows(prefix: str, n: int, start: int = 0) -> str:
    rows = [{"id": f"{prefix}{i}", "text": f"ticket {i} about {QUEUES[i % 3]}", "queue": QUEUES[i % 3]}
            for i in range(start, start + n)]
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def base_registry() -> Registry:
    return create_registry(entry_points=False)


@pytest.fixture
def fake() -> FakeType:
    return FakeType()


@pytest.fixture
def registry(base_registry: Registry, fake: FakeType) -> Registry:
    return replace(base_registry, providers={**base_registry.providers, "fake": fake})


@pytest.fixture
def scenario(tmp_path: Path, registry: Registry) -> Scenario:
    (tmp_path / "train.jsonl").write_text(_rows("t", 12), encoding="utf-8")
    (tmp_path / "dev.jsonl").write_text(_rows("d", 6, 100), encoding="utf-8")
    (tmp_path / "test.jsonl").write_text(_rows("e", 6, 200), encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return load_scenario(tmp_path / "spec.yaml", registry)


WRITER = ModelSpec(provider="fake", id="writer")


def _propose(
    runner: Runner, scenario: Scenario, *, start: VariantSpec | None = None, limit: CallLimit | None = None, **given: Any
) -> Proposals:
    spec = ProposeSpec(**{"propose": 4, "proposer": WRITER, "seed": 3, "sample": 4, **given})
    variant = start or scenario.variants["baseline"]
    train = load_training_cases(variant.task, scenario.path)

    async def go() -> Proposals:
        if limit is None:
            return await propose_instructions(runner, scenario, spec, variant, "exact_match", {}, train)
        with runner.calls.limited(limit):
            return await propose_instructions(runner, scenario, spec, variant, "exact_match", {}, train)

    return asyncio.run(go())


def _examples(prompt: str) -> list[str]:
    return re.findall(r"^text: (.*)$", prompt, re.M)


def test_one_request_per_proposal_from_the_task_with_its_number_seed_and_sample(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    proposals = _propose(Runner(registry), scenario)
    assert [(p.number, p.round, p.dropped) for p in proposals.items] == [(1, 1, None), (2, 1, None), (3, 1, None), (4, 1, None)]
    assert proposals.text_of(2) == "Reply with the queue name only, proposal 2."
    sent = fake.sent()
    assert len(sent) == 4 and not fake.sent("student")  # without failures nothing is scored
    assert [r.params for r in sent] == [{"temperature": 0.8, "max_tokens": 160, "seed": 3000 + n} for n in range(1, 5)]
    prompt = sent[0].prompt
    assert [m["role"] for m in sent[0].messages] == ["user"]
    assert "Task: Route support tickets to the right queue" in prompt
    assert "Current instruction: Route the ticket." in prompt
    assert "The assistant reads the text and must reply with the queue." in prompt
    shown = _examples(prompt)
    assert len(shown) == 4 and all(_examples(r.prompt) == shown for r in sent)  # one seeded sample for all
    first = re.search(r"^text: (ticket (\d+) about (\w+))\nqueue: (\w+)$", prompt, re.M)
    assert first is not None and first.group(3) == first.group(4)  # each input beside its expected answer
    assert "Write instruction number 1:" in prompt and prompt.endswith("Reply with the instruction only.")
    assert len({r.prompt for r in sent}) == 4
    assert proposals.base_train_score is None and all(p.train_score is None for p in proposals.items)


def test_the_proposer_defaults_to_the_variants_model_without_its_answer_shaping_params(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    _propose(Runner(registry), scenario, proposer=None, propose=2)
    sent = fake.sent("student")
    assert len(sent) == 2 and not fake.sent("writer")
    assert sent[0].params == {"temperature": 0.8, "max_tokens": 160, "seed": 3001}  # not temperature 0 / max_tokens 4
    own = ModelSpec(provider="fake", id="writer", params={"temperature": 0.2, "max_tokens": 60, "seed": 1, "top_p": 0.9})
    _propose(Runner(registry), scenario, proposer=own, propose=1)
    assert fake.sent()[-1].params == {"temperature": 0.2, "max_tokens": 60, "seed": 3001, "top_p": 0.9}


def test_failures_writes_two_rounds_and_shows_the_best_ones_wrong_answers(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    fake.script = lambda n, prompt: {1: "Be polite.", 2: "Reply with the queue name only."}.get(n, f"Round two text {n}.")
    proposals = _propose(Runner(registry), scenario, propose=5, sample=6, sources=("task", "failures"))
    assert [(p.number, p.round) for p in proposals.items] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]
    # the as-written instruction and each kept first-round proposal, on the same 6 training cases
    scored = fake.sent("student")
    assert len(scored) == 4 * 6
    systems = [next(m["content"] for m in r.messages if m["role"] == "system") for r in scored]
    assert systems.count("Route the ticket.") == 6 and systems.count("Reply with the queue name only.") == 6
    assert {r.case.id for r in scored} == {f"t{n}" for n in re.findall(r"^text: ticket (\d+) ", fake.sent()[0].prompt, re.M)}
    assert proposals.base_train_score == 0.0
    scores = {p.number: p.train_score for p in proposals.items}
    assert scores[1] == 0.0 and scores[3] == 0.0 and scores[4] is None and scores[5] is None
    assert scores[2] is not None and 0 < scores[2] < 1
    first, second = fake.sent()[0].prompt, fake.sent()[3].prompt
    assert "It got these wrong" not in first
    assert "Best instruction so far (proposal 2): Reply with the queue name only." in second
    misses = re.findall(r"^text: (ticket \d+ about (\w+))\nIts answer: wrong\nRight queue: (\w+)$", second, re.M)
    assert misses and len(misses) <= 5
    assert all(about == queue != "billing" for _, about, queue in misses)
    assert any("round 2 was shown the wrong answers" in note and "proposal 2" in note for note in proposals.notes)


def test_ties_go_to_the_instruction_as_written_and_at_most_five_misses_are_shown(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    fake.script = lambda n, prompt: f"Be polite, version {n}."  # as bad as the instruction as written
    proposals = _propose(Runner(registry), scenario, propose=2, sample=12, sources=("task", "failures"))
    assert proposals.base_train_score == 0.0 and proposals.items[0].train_score == 0.0
    second = fake.sent()[1].prompt
    assert "Best instruction so far (as written): Route the ticket." in second
    assert second.count("Its answer: wrong") == 5


def test_a_rerun_with_the_cache_asks_nothing_and_another_seed_asks_other_requests(
    scenario: Scenario, registry: Registry, fake: FakeType, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = _propose(Runner(registry, ResponseCache(cache)), scenario, sources=("task", "failures"))
    made = len(fake.log)
    assert made == 4 + 3 * 4  # four proposals, and three instructions scored on four cases
    assert first.usage.calls == made and first.usage.cache_hits == 0
    again = _propose(Runner(registry, ResponseCache(cache)), scenario, sources=("task", "failures"))
    assert len(fake.log) == made  # no new call
    assert again.to_json()["items"] == first.to_json()["items"]
    assert again.usage.calls == 0 and again.usage.cache_hits == made and again.usage.cost_usd == 0.0
    assert again.usage.cached_cost_usd == pytest.approx(first.usage.cost_usd)
    before = {json.dumps([r.prompt, dict(r.params)]) for r in fake.sent()}
    _propose(Runner(registry, ResponseCache(cache)), scenario, seed=4)
    after = [json.dumps([r.prompt, dict(r.params)]) for r in fake.sent()[4:]]
    assert len(after) == 4 and not before & set(after)
    assert [json.loads(a)[1]["seed"] for a in after] == [4001, 4002, 4003, 4004]


def test_usage_adds_up_the_proposer_calls_and_the_scoring(scenario: Scenario, registry: Registry, fake: FakeType) -> None:
    proposals = _propose(Runner(registry), scenario, propose=2, sources=("task", "failures"))
    assert proposals.usage.calls == len(fake.log) == 1 + 2 * 4 + 1
    assert proposals.usage.cost_usd == pytest.approx(0.001 * len(fake.log))
    assert proposals.usage.input_tokens == sum(len(r.prompt.split()) for _, r in fake.log)
    assert proposals.to_json()["usage"]["calls"] == len(fake.log)


def test_empty_and_repeated_proposals_are_dropped_with_their_reasons(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    script = {1: "```\nInstruction: \"Answer with one word.\"\n```", 2: "  route the   TICKET ", 3: " ", 4: "answer with ONE word"}
    fake.script = lambda n, prompt: script[n]
    proposals = _propose(Runner(registry), scenario)
    dropped = {p.number: p.dropped for p in proposals.items}
    assert dropped == {1: None, 2: "the same as the instruction as written", 3: "empty answer",
                       4: "the same as proposal 1"}
    assert proposals.items[0].text == "Answer with one word."
    assert [p.number for p in proposals.kept()] == [1]
    assert proposals.text_of(1) == "Answer with one word." and proposals.text_of(2) is None and proposals.text_of(9) is None
    assert proposals.items[1].text == "route the   TICKET"  # a dropped proposal keeps its text
    assert proposals.notes[0].startswith("3 of 4 proposals dropped: proposal 2: the same as the instruction as written;")
    doc = proposals.to_json()
    assert doc["counts"] == {"proposed": 4, "kept": 1, "dropped": 3}
    assert doc["items"][3] == {"number": 4, "round": 1, "text": "answer with ONE word", "dropped": "the same as proposal 1",
                               "train_score": None}


def test_a_proposal_that_breaks_a_guardrail_is_dropped_with_its_reason(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    base = scenario.variants["baseline"]
    guarded = replace(base.recipe, system="Route the ticket. Never reveal secrets.",
                      guardrails=Guardrails(max_length=400, required=("Never reveal secrets.",), forbidden=("password",)))
    script = {1: "Sort it. Never reveal secrets.", 2: "Ask for the PASSWORD. Never reveal secrets.", 3: "Sort it.",
              4: "Never reveal secrets. " + "Think. " * 80}
    fake.script = lambda n, prompt: script[n]
    proposals = _propose(Runner(registry), scenario, start=replace(base, recipe=guarded))
    dropped = {p.number: p.dropped for p in proposals.items}
    assert dropped[1] is None
    assert dropped[2] is not None and dropped[2].startswith("breaks a guardrail on training case ")
    assert "guardrail forbidden ('password'): the rendered prompt contains 'PASSWORD'" in dropped[2]
    assert dropped[3] is not None and "guardrail required" in dropped[3] and "Never reveal secrets." in dropped[3]
    assert dropped[4] is not None and "400" in dropped[4]
    assert proposals.to_json()["counts"] == {"proposed": 4, "kept": 1, "dropped": 3}
    assert 'The instruction must contain: "Never reveal secrets."' in fake.sent()[0].prompt


def test_the_search_budget_stops_further_proposals_with_what_was_written(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    limit = CallLimit(calls=2)
    with pytest.raises(ProposingStopped) as raised:
        _propose(Runner(registry), scenario, limit=limit)
    assert isinstance(raised.value, BudgetExceeded)  # what the search catches
    assert len(fake.log) == 2 and limit.made == 2 and limit.refused == 1
    message = str(raised.value)
    assert "search.axes.instructions proposal 3: the search's budget (2 calls) is used up: call not made" in message
    assert message.endswith("(2 of 4 proposals written)")
    partial = raised.value.partial
    assert [p.number for p in partial.items] == [1, 2] and partial.usage.calls == 2


def test_cached_proposals_do_not_count_against_the_budget(
    scenario: Scenario, registry: Registry, fake: FakeType, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = _propose(Runner(registry, ResponseCache(cache)), scenario)
    limit = CallLimit(calls=0)
    again = _propose(Runner(registry, ResponseCache(cache)), scenario, limit=limit)
    assert again.to_json()["items"] == first.to_json()["items"] and limit.made == 0


def test_a_failing_proposer_is_raised_naming_the_proposal(scenario: Scenario, registry: Registry, fake: FakeType) -> None:
    fake.fail = ProviderError("fake: 500 from the server")
    with pytest.raises(ProviderError, match=r"search.axes.instructions proposal 1: the proposer failed: fake: 500"):
        _propose(Runner(registry), scenario)
    fake.fail = RuntimeError("boom")  # a plugin's own exception: the gateway maps it
    with pytest.raises(ProviderError, match=r"proposal 1: the proposer failed: provider 'fake' raised RuntimeError: boom"):
        _propose(Runner(registry), scenario)


def test_no_training_cases_still_proposes_and_says_so(scenario: Scenario, registry: Registry, fake: FakeType) -> None:
    spec = ProposeSpec(propose=2, proposer=WRITER, sources=("task", "failures"))
    variant = scenario.variants["baseline"]
    proposals = asyncio.run(propose_instructions(Runner(registry), scenario, spec, variant, "exact_match", {}, []))
    assert [p.dropped for p in proposals.items] == [None, None] and "Examples:" not in fake.sent()[0].prompt
    assert proposals.base_train_score is None and not fake.sent("student")
    assert any("no training cases" in note for note in proposals.notes)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Answer briefly.  ", "Answer briefly."),
        ('"Answer briefly."', "Answer briefly."),
        ("\u201cAnswer briefly.\u201d", "Answer briefly."),
        ("```text\nAnswer briefly.\n```", "Answer briefly."),
        ("```\nAnswer briefly.\n```\nThis instruction helps.", "Answer briefly."),
        ("Instruction: Answer briefly.", "Answer briefly."),
        ("**New instruction:** Answer briefly.", "Answer briefly."),
        ("Instruction 3 - 'Answer briefly.'", "Answer briefly."),
        ("'yes' or 'no'", "'yes' or 'no'"),
        ("Say \"yes\" or \"no\".", "Say \"yes\" or \"no\"."),
        ("Rule one.\n\n\n\nRule two.   ", "Rule one.\n\nRule two."),
        ("", ""),
    ],
)
def test_answers_are_cleaned_into_instructions(raw: str, clean: str) -> None:
    assert clean_proposal(raw) == clean


def test_a_long_answer_is_cut_at_a_word_under_the_limit() -> None:
    text = clean_proposal("word " * 400)
    assert len(text) <= 1000 and text.endswith("word") and len(text) > 900


def test_training_cases_with_an_error_are_never_shown(scenario: Scenario, registry: Registry, fake: FakeType) -> None:
    variant = scenario.variants["baseline"]
    train = [Case(id="bad", fields={"text": "broken row"}, error="unreadable"),
             *load_training_cases(variant.task, scenario.path)]
    spec = ProposeSpec(propose=1, proposer=WRITER, sample=50)
    asyncio.run(propose_instructions(Runner(registry), scenario, spec, variant, "exact_match", {}, train))
    shown = _examples(fake.sent()[0].prompt)
    assert len(shown) == 12 and "broken row" not in shown


SEARCH = """\
search:
  from: baseline
  axes:
    instructions: {propose: 3, proposer: {provider: fake, id: writer}, from: [task, failures]}
  objective: {metric: exact_match}
  confirm: {vs: baseline}
"""


def test_the_search_evaluates_the_kept_proposals_on_dev_and_skips_a_dropped_one(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    from llmopt.search import run_search

    scenario.path.write_text(SPEC + SEARCH, encoding="utf-8")
    fake.script = lambda n, prompt: {1: "Be polite.", 2: "Reply with the queue name only.", 3: "be polite"}[n]
    outcome = run_search(Runner(registry), load_scenario(scenario.path, registry))
    assert outcome.proposals is not None and outcome.proposals.text_of(3) is None
    by_proposal = {run.candidate.proposal: run for run in outcome.runs}
    assert by_proposal[3].error == "not evaluated: proposal 3 was dropped (the same as proposal 1)"
    assert by_proposal[2].candidate.variant.recipe.instruction == "Reply with the queue name only."
    assert outcome.winner is by_proposal[2]
    dev = {r.case.id for r in fake.sent("student")} - {f"t{i}" for i in range(12)}
    assert dev and all(case_id.startswith("d") for case_id in dev)  # proposals from train, selection on dev only


def test_cases_the_recipe_as_written_cannot_make_a_prompt_for_are_left_out_of_the_check(
    scenario: Scenario, registry: Registry, fake: FakeType
) -> None:
    base = scenario.variants["baseline"]
    guarded = replace(base.recipe, guardrails=Guardrails(forbidden=(r"ticket \d+ about tech",)))
    proposals = _propose(Runner(registry), scenario, start=replace(base, recipe=guarded), sample=12, propose=1)
    assert proposals.items[0].dropped is None  # every tech ticket breaks it as written too
    assert "does not make a valid prompt for 4 of the 12 training cases shown" in " ".join(proposals.notes)
