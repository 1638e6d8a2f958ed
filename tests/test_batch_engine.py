"""Batch mode in the engine: the batch phase against loopback fakes of OpenAI's Batch
API and Anthropic's Message Batches, through the official SDKs."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
from fakes.batch_servers import FakeAnthropicBatch, FakeOpenAIBatch

from llmopt.engine.batch import BatchPhase, BatchTarget, PhaseReport
from llmopt.engine.batch_ledger import BatchLedger
from llmopt.engine.budget import Budget
from llmopt.engine.cache import ResponseCache
from llmopt.engine.runner import Runner, run_sync
from llmopt.registry import create_registry
from llmopt.spec import load_scenario

N = 12


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-batch0123456789")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAIBatch]:
    with FakeOpenAIBatch(delay=0.02) as fake:
        yield fake


def spec(tmp_path: Path, base_url: str, provider: str = "openai", extra: str = "", n: int = N) -> Path:
    cases = "\n".join(f"    - {{id: c{i}, question: 'what is {i} plus {i}', expected: 'plus'}}" for i in range(n))
    text = textwrap.dedent(
        """\
        llmopt: 1
        scenario: sums
        task:
          id: id
          cases:
        {cases}
        recipe: {{system: Answer briefly., template: "Q: {{{{ question }}}}"}}
        model:
          provider: {provider}
          id: m-1
          base_url: {base_url}
          price: {{input: 2.0, output: 4.0}}
          params: {{max_tokens: 20}}
        variants:
          short: {{}}
          long: {{recipe: {{template: "Question: {{{{ question }}}}"}}}}
        assertions:
          - {{metric: contains, variant: long, vs: short, min_delta: 0.0}}
        {extra}
        """
    ).format(cases=cases, provider=provider, base_url=base_url, extra=extra)
    path = tmp_path / "sums.yaml"
    path.write_text(text)
    return path


def runner(tmp_path: Path, budget: Budget | None = None) -> Runner:
    return Runner(create_registry(entry_points=False), ResponseCache(tmp_path / "cache"), budget=budget)


def phase(r: Runner, run: str = "run-1", **kwargs: Any) -> BatchPhase:
    ledger = BatchLedger(tmp_cache(r), run, f"{run}-owner")
    kwargs.setdefault("first_poll_s", 0.01)
    kwargs.setdefault("everywhere", True)
    return BatchPhase(r, ledger, **kwargs)


def tmp_cache(r: Runner) -> Path:
    assert r.cache is not None
    return r.cache.directory


def run_phase(r: Runner, path: Path, run: str = "run-1", **kwargs: Any) -> PhaseReport:
    scenario = load_scenario(path, r.registry)
    targets = [BatchTarget(scenario, v) for v in ("short", "long")]
    return run_sync(lambda: phase(r, run, **kwargs).arun(targets))


def evaluate(r: Runner, path: Path) -> dict[str, Any]:
    scenario = load_scenario(path, r.registry)
    return {v: r.evaluate(scenario, v) for v in ("short", "long")}


def outputs(results: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {v: [(c.id, c.outputs, c.scores, c.error) for c in res.cases] for v, res in results.items()}


def test_openai_batch_gives_the_sync_results_at_half_the_cost(tmp_path: Path, openai_fake: FakeOpenAIBatch) -> None:
    path = spec(tmp_path, openai_fake.base_url)
    sync = evaluate(runner(tmp_path / "sync"), path)
    assert openai_fake.sync_requests == 2 * N
    batched_runner = runner(tmp_path / "batch")
    report = run_phase(batched_runner, path)
    assert report.requests == 2 * N and len(report.submitted) == 1 and report.answered == 2 * N
    batched = evaluate(batched_runner, path)
    assert outputs(batched) == outputs(sync)
    assert openai_fake.sync_requests == 2 * N  # evaluation ran from the cache
    for name in ("short", "long"):
        usage = batched[name].usage
        assert usage.batch_calls == N and usage.calls == N and usage.cache_hits == 0
        assert usage.cost_usd == pytest.approx(sync[name].usage.cost_usd / 2)
        assert usage.input_tokens == sync[name].usage.input_tokens
    # the batch entries are byte for byte the synchronous bodies: every body was sent
    # exactly twice over the two runs (once per run), none twice in one run
    assert set(openai_fake.sent.values()) == {2}


def test_anthropic_message_batches_give_the_sync_results(tmp_path: Path) -> None:
    with FakeAnthropicBatch(delay=0.02) as fake:
        path = spec(tmp_path, fake.base_url, provider="anthropic")
        sync = evaluate(runner(tmp_path / "sync"), path)
        r = runner(tmp_path / "batch")
        report = run_phase(r, path)
        batched = evaluate(r, path)
    assert report.answered == 2 * N and fake.batch_requests == 2 * N and fake.sync_requests == 2 * N
    assert outputs(batched) == outputs(sync)
    assert batched["short"].usage.cost_usd == pytest.approx(sync["short"].usage.cost_usd / 2)
    assert batched["short"].usage.batch_calls == N


def test_a_rerun_answers_from_the_cache_and_sends_nothing(tmp_path: Path, openai_fake: FakeOpenAIBatch) -> None:
    path = spec(tmp_path, openai_fake.base_url)
    run_phase(runner(tmp_path), path)
    again = runner(tmp_path)
    report = run_phase(again, path, run="run-2")
    results = evaluate(again, path)
    assert report.requests == 0 and openai_fake.batch_requests == 2 * N and openai_fake.sync_requests == 0
    assert results["short"].usage.cache_hits == N and results["short"].usage.batch_calls == 0


def test_submit_then_resume_collects_the_same_batch(tmp_path: Path) -> None:
    with FakeOpenAIBatch(delay=0.3) as fake:
        path = spec(tmp_path, fake.base_url)
        first = run_phase(runner(tmp_path), path, wait=False)
        assert len(first.submitted) == 1 and first.waiting  # still in progress: the targets wait
        assert all(waiting == first.submitted for waiting in first.waiting.values())
        # the run is interrupted here; a new run (another run id) resumes the batch
        second_runner = runner(tmp_path)
        second = run_phase(second_runner, path, run="run-2")
        results = evaluate(second_runner, path)
    assert second.submitted == [] and second.collected == first.submitted
    assert fake.batch_requests == 2 * N and fake.twice == 0 and fake.sync_requests == 0
    assert results["long"].usage.batch_calls == N and results["long"].errors == 0


def test_failed_and_expired_requests_are_case_errors_and_only_they_are_resubmitted(tmp_path: Path) -> None:
    def fate(custom_id: str, body: Mapping[str, Any]) -> Any:
        text = body["messages"][-1]["content"]
        if text.endswith("what is 3 plus 3"):
            return ("error", 400, "Invalid 'max_tokens': too small for this prompt.")
        return "expired" if text.endswith("what is 5 plus 5") else None

    with FakeOpenAIBatch(delay=0.0, outcome=fate) as fake:
        path = spec(tmp_path, fake.base_url)
        r = runner(tmp_path)
        report = run_phase(r, path)
        results = evaluate(r, path)
        errors = {c.id: c.error for c in results["short"].cases if c.error}
        assert report.failed == 4 and fake.sync_requests == 0
        assert set(errors) == {"c3", "c5"}
        assert "Invalid 'max_tokens': too small for this prompt." in errors["c3"]
        assert "batch_expired" in errors["c5"] and "completion window expired" in errors["c5"]
        fake.outcome = lambda custom_id, body: None
        again = runner(tmp_path)
        second = run_phase(again, path, run="run-2")
        fixed = evaluate(again, path)
    assert second.requests == 4  # only the failed ones
    assert fixed["short"].errors == 0 and fixed["short"].usage.batch_calls == 2
    assert fake.batch_requests == 2 * N + 4


def test_a_failed_batch_makes_its_requests_case_errors(tmp_path: Path) -> None:
    with FakeOpenAIBatch(fail_batch="model m-1 does not support the batch API") as fake:
        path = spec(tmp_path, fake.base_url)
        r = runner(tmp_path)
        run_phase(r, path)
        results = evaluate(r, path)
    errors = [c.error for c in results["short"].cases]
    assert all(e and "ended (failed)" in e and "does not support the batch API" in e for e in errors)
    assert fake.sync_requests == 0


def test_batches_are_split_at_the_request_limit(tmp_path: Path, openai_fake: FakeOpenAIBatch, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmopt.provider import _openai_batch
    from llmopt.provider._batch import BatchLimits

    monkeypatch.setattr(_openai_batch, "OPENAI_LIMITS", BatchLimits(requests=5, bytes=10**9))
    path = spec(tmp_path, openai_fake.base_url)
    report = run_phase(runner(tmp_path), path)
    assert len(report.submitted) == 5 and report.answered == 2 * N  # 24 requests: 5+5+5+5+4
    assert sorted(len(b.requests) for b in openai_fake.batches.values()) == [4, 5, 5, 5, 5]


def test_batches_are_split_at_the_byte_limit(tmp_path: Path, openai_fake: FakeOpenAIBatch, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmopt.provider import _openai_batch
    from llmopt.provider._batch import BatchLimits

    monkeypatch.setattr(_openai_batch, "OPENAI_LIMITS", BatchLimits(requests=1000, bytes=1200))
    report = run_phase(runner(tmp_path), spec(tmp_path, openai_fake.base_url))
    files = [f for k, f in openai_fake.files.items() if k.startswith("file-fake")]
    assert len(report.submitted) > 1 and all(len(f) <= 1200 for f in files)


def test_a_batch_over_the_budget_is_not_submitted(tmp_path: Path, openai_fake: FakeOpenAIBatch) -> None:
    path = spec(tmp_path, openai_fake.base_url)
    budget = Budget(0.0001)
    r = runner(tmp_path, budget)
    report = run_phase(r, path)
    results = evaluate(r, path)
    assert report.submitted == [] and openai_fake.batch_requests == 0 and openai_fake.sync_requests == 0
    error = results["short"].cases[0].error
    assert error and "not submitted" in error and "--llmopt-budget" in error
    assert budget.refused == 2 * N


def test_the_budget_holds_the_batch_rate_and_records_the_cost(tmp_path: Path, openai_fake: FakeOpenAIBatch) -> None:
    budget = Budget(10.0)
    r = runner(tmp_path, budget)
    run_phase(r, spec(tmp_path, openai_fake.base_url))
    results = evaluate(r, spec(tmp_path, openai_fake.base_url))
    total = sum(res.usage.cost_usd for res in results.values())
    assert budget.spent_usd == pytest.approx(total) and total > 0


JUDGE = """\
  - metric: judge
    variant: long
    args: {{rubric: "Is it brief?", judge: {{provider: openai, id: judge-1, base_url: {base_url}, price: {{input: 1, output: 1}}}}}}
    min: 0.0
"""


def test_judge_calls_go_in_a_second_round(tmp_path: Path) -> None:
    def answer(body: Mapping[str, Any]) -> str:
        return "VERDICT: 4" if body.get("model") == "judge-1" else str(body["messages"][-1]["content"])

    with FakeOpenAIBatch(answer=answer) as fake:
        path = spec(tmp_path, fake.base_url, extra=JUDGE.format(base_url=fake.base_url))
        sync = evaluate(runner(tmp_path / "sync"), path)
        r = runner(tmp_path / "batch")
        report = run_phase(r, path)
        batched = evaluate(r, path)
    assert len(report.submitted) == 2  # round 1: the model under test; round 2: the judge
    assert fake.sync_requests == 3 * N  # only the synchronous run's
    assert outputs(batched) == outputs(sync)
    assert batched["long"].judge_usage is not None and batched["long"].judge_usage.batch_calls == N


def test_sync_and_local_models_are_left_to_evaluation(tmp_path: Path, openai_fake: FakeOpenAIBatch) -> None:
    path = spec(tmp_path, openai_fake.base_url)
    path.write_text(path.read_text().replace("long: {recipe:", "long: {model: {provider: echo, id: null, base_url: null, price: null}, recipe:"))
    r = runner(tmp_path)
    report = run_phase(r, path)
    results = evaluate(r, path)
    assert report.requests == N and results["long"].errors == 0 and results["long"].usage.batch_calls == 0


def test_model_batch_false_keeps_a_model_synchronous(tmp_path: Path, openai_fake: FakeOpenAIBatch) -> None:
    path = spec(tmp_path, openai_fake.base_url)
    path.write_text(path.read_text().replace("  params: {max_tokens: 20}", "  params: {max_tokens: 20}\n  batch: false"))
    report = run_phase(runner(tmp_path), path)
    assert report.requests == 0 and openai_fake.batch_requests == 0


def test_model_batch_true_batches_without_the_option(tmp_path: Path, openai_fake: FakeOpenAIBatch) -> None:
    path = spec(tmp_path, openai_fake.base_url)
    path.write_text(path.read_text().replace("  params: {max_tokens: 20}", "  params: {max_tokens: 20}\n  batch: true"))
    report = run_phase(runner(tmp_path), path, everywhere=False)
    assert report.requests == 2 * N


def test_an_interrupted_wait_resumes_without_sending_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmopt.provider._openai_batch import OpenAIBatcher

    real = OpenAIBatcher.status

    async def interrupted(self: OpenAIBatcher, batch_id: str) -> Any:
        raise KeyboardInterrupt  # Ctrl-C (or a killed CI job) while waiting

    with FakeOpenAIBatch(delay=0.05) as fake:
        path = spec(tmp_path, fake.base_url)
        monkeypatch.setattr(OpenAIBatcher, "status", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_phase(runner(tmp_path), path)
        assert fake.batch_requests == 2 * N
        monkeypatch.setattr(OpenAIBatcher, "status", real)
        r = runner(tmp_path)
        report = run_phase(r, path, run="run-2")
        results = evaluate(r, path)
    assert report.submitted == [] and len(report.collected) == 1
    assert fake.batch_requests == 2 * N and fake.twice == 0 and fake.sync_requests == 0
    assert results["short"].errors == 0 and results["short"].usage.batch_calls == N


def test_anthropic_errored_and_expired_results_are_case_errors(tmp_path: Path) -> None:
    def fate(custom_id: str, body: Mapping[str, Any]) -> Any:
        text = body["messages"][-1]["content"]
        if text.endswith("what is 2 plus 2"):
            return ("error", 400, "max_tokens: 20 is too small")
        return "expired" if text.endswith("what is 7 plus 7") else None

    with FakeAnthropicBatch(outcome=fate) as fake:
        path = spec(tmp_path, fake.base_url, provider="anthropic")
        r = runner(tmp_path)
        report = run_phase(r, path)
        results = evaluate(r, path)
    errors = {c.id: c.error for c in results["long"].cases if c.error}
    assert report.failed == 4 and set(errors) == {"c2", "c7"} and fake.sync_requests == 0
    assert "batch request errored (invalid_request_error): max_tokens: 20 is too small" in str(errors["c2"])
    assert "expired before the batch could process it" in str(errors["c7"])
    assert results["long"].usage.batch_calls == N - 2


def test_the_progress_line_counts_requests_done(tmp_path: Path) -> None:
    lines: list[str] = []
    with FakeOpenAIBatch(delay=0.2) as fake:
        run_phase(runner(tmp_path), spec(tmp_path, fake.base_url), note=lines.append)
    assert lines[0].startswith("llmopt batch: submitted batch_fake_0001 (24 requests")
    assert any(f"/{2 * N} requests done (batch_fake_0001 in_progress" in line for line in lines)
    assert f"{2 * N}/{2 * N} requests done (batch_fake_0001 completed {2 * N}/{2 * N})" in lines[-1]


def test_a_worker_waits_for_another_workers_batch_and_takes_over_when_it_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmopt.engine import batch

    # The batch ends well after worker A's one look (a shorter delay lets A collect it itself).
    with FakeOpenAIBatch(delay=1.0) as fake:
        path = spec(tmp_path, fake.base_url)
        first = run_phase(runner(tmp_path), path, wait=False)  # worker A submits, then dies
        monkeypatch.setattr(batch, "ORPHAN_AFTER_S", 0.05)
        r = runner(tmp_path)
        scenario = load_scenario(path, r.registry)
        ledger = BatchLedger(tmp_cache(r), "run-1", "worker-B")  # the same run, another worker
        phase_b = BatchPhase(r, ledger, everywhere=True, first_poll_s=0.01)
        report = run_sync(lambda: phase_b.arun([BatchTarget(scenario, v) for v in ("short", "long")]))
        results = evaluate(r, path)
    assert report.submitted == [] and report.collected == first.submitted
    assert fake.batch_requests == 2 * N and fake.twice == 0 and results["short"].errors == 0
