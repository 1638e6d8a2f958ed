"""``--llmopt-batch`` and ``model.batch`` in pytest runs, against loopback fakes of the
batch APIs (``--llmopt-batch=submit`` then a resumed run, ``-n 2``, usage errors)."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from fakes.batch_servers import FakeOpenAIBatch

N = 6


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch0123456789abcdef")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def fake() -> Iterator[FakeOpenAIBatch]:
    with FakeOpenAIBatch(delay=0.05) as server:
        yield server


SPEC = """\
llmopt: 1
scenario: s{n}
task:
  id: id
  cases:
{cases}
recipe: {{template: "Q{n}: {{{{ question }}}}"}}
model: {{provider: openai, id: m-1, base_url: "{base_url}", price: {{input: 2.0, output: 4.0}}{extra}}}
variants:
  a: {{}}
  b: {{recipe: {{template: "Question {n}: {{{{ question }}}}"}}}}
assertions:
  - {{metric: contains, variant: b, min: 1.0}}
  - {{metric: contains, variant: b, vs: a, min_delta: 0.0}}
"""


def write_specs(project: pytest.Pytester, base_url: str, model_extra: str = "", scenarios: int = 1) -> None:
    project.makeini("[pytest]\nllmopt_cache_dir = .cache-llmopt\nllmopt_batch_poll = 0.02\n")
    cases = "\n".join(f"    - {{id: c{i}, question: 'say {i} words', expected: 'words'}}" for i in range(N))
    for n in range(scenarios):
        text = SPEC.format(n=n, cases=cases, base_url=base_url, extra=model_extra)
        (project.path / "specs" / f"s{n}.yaml").write_text(text)


def usage(project: pytest.Pytester, variant: str = "b") -> dict[str, float]:
    doc = json.loads((project.path / "r.json").read_text())
    return doc["scenarios"][0]["variants"][variant]["usage"]


def test_batch_mode_runs_the_items_from_the_batch_answers(project: pytest.Pytester, fake: FakeOpenAIBatch) -> None:
    write_specs(project, fake.base_url)
    result = project.runpytest("specs", "--llmopt-batch", "--llmopt-json=r.json")
    result.assert_outcomes(passed=2)
    assert fake.batch_requests == 2 * N and fake.sync_requests == 0 and fake.twice == 0
    found = usage(project)
    assert found["batch_calls"] == N and found["calls"] == N and found["cache_hits"] == 0
    result.stdout.fnmatch_lines(["*llmopt batch: submitted batch_fake_0001 (12 requests*", f"*on {2 * N} calls ({2 * N} through batch APIs)*"])


def test_batch_cost_is_half_the_synchronous_cost(project: pytest.Pytester, fake: FakeOpenAIBatch) -> None:
    write_specs(project, fake.base_url)
    project.runpytest("specs", "--llmopt-no-cache", "--llmopt-json=r.json").assert_outcomes(passed=2)
    sync = usage(project)
    project.runpytest("specs", "--llmopt-batch", "--llmopt-json=r.json").assert_outcomes(passed=2)
    assert usage(project)["cost_usd"] == pytest.approx(sync["cost_usd"] / 2)


def test_submit_skips_the_items_and_a_later_run_collects(project: pytest.Pytester) -> None:
    with FakeOpenAIBatch(delay=1.0) as fake:
        write_specs(project, fake.base_url)
        first = project.runpytest("specs", "--llmopt-batch=submit", "-rs")
        first.assert_outcomes(skipped=2)
        first.stdout.fnmatch_lines(["*waiting for batch(es) batch_fake_0001: run again with --llmopt-batch*"])
        second = project.runpytest("specs", "--llmopt-batch", "--llmopt-json=r.json")
        second.assert_outcomes(passed=2)
    assert len(fake.batches) == 1 and fake.batch_requests == 2 * N and fake.twice == 0 and fake.sync_requests == 0
    assert usage(project)["batch_calls"] == N  # the run that collected pays


def test_model_batch_true_batches_without_the_option(project: pytest.Pytester, fake: FakeOpenAIBatch) -> None:
    write_specs(project, fake.base_url, model_extra=", batch: true")
    project.runpytest("specs").assert_outcomes(passed=2)
    assert fake.batch_requests == 2 * N and fake.sync_requests == 0


def test_without_batch_mode_nothing_is_batched(project: pytest.Pytester, fake: FakeOpenAIBatch) -> None:
    write_specs(project, fake.base_url)
    project.runpytest("specs").assert_outcomes(passed=2)
    assert fake.batch_requests == 0 and fake.sync_requests == 2 * N


@pytest.mark.parametrize("option", ["--llmopt-no-cache", "--llmopt-cache=replay"])
def test_batch_mode_needs_the_cache(project: pytest.Pytester, option: str) -> None:
    (project.path / "specs" / "s.yaml").write_text("llmopt: 1\n")
    result = project.runpytest("specs", "--llmopt-batch", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--llmopt-batch keeps the answers in the response cache: it cannot run with {option}*"])


def test_under_xdist_each_request_is_sent_once(project: pytest.Pytester, fake: FakeOpenAIBatch) -> None:
    write_specs(project, fake.base_url, scenarios=3)
    result = project.runpytest_subprocess("specs", "-n", "2", "--llmopt-batch", "--llmopt-json=r.json")
    result.assert_outcomes(passed=6)
    assert fake.batch_requests == 3 * 2 * N and fake.sync_requests == 0 and fake.twice == 0
    doc = json.loads((project.path / "r.json").read_text())
    paid = sum(v["usage"]["batch_calls"] for s in doc["scenarios"] for v in s["variants"].values())
    assert paid == 3 * 2 * N  # every batch answer paid for once, whichever worker collected it
