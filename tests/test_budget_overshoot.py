"""A budget under concurrency: calls reserve their estimated cost before they are sent.

Before reservations, a budget for 50 calls made 107 at concurrency 64: every call in
flight when the budget ran out was paid for on top. Now a call is sent only when its
estimate fits beside what is spent and what the calls in flight hold, so the calls made
are at most the budget's calls plus those in flight, and with estimates that are upper
bounds the spend never passes the limit (one process or several xdist workers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from fakes.openai_server import FakeOpenAI

#: USD per million output tokens; input is free, so a call's cost is its output tokens.
OUTPUT_PRICE = 1000.0
#: The fake echoes the question: two words, two output tokens.
CALL_COST = 2 * OUTPUT_PRICE / 1e6
CONCURRENCY = 64

SPEC = """\
llmopt: 1
scenario: {scenario}
task:
  id: id
  expected: answer
  cases:
{cases}
recipe:
  template: "{{{{ question }}}}"
model:
  provider: openai
  id: priced-model
  base_url: {base_url}
  concurrency: {concurrency}
  max_retries: 0
  price: {{input: 0, output: {price}}}
  params: {{max_tokens: {max_tokens}}}
assertions:
  - metric: exact_match
    min: 0.0
    max_error_rate: 1.0
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-budget-overshoot-0123456789")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAI(delay=0.05) as server:  # calls overlap: many are in flight at once
        yield server


def _write(pytester: pytest.Pytester, fake: FakeOpenAI, scenario: str, cases: int, max_tokens: int) -> None:
    rows = "".join(f'    - {{id: c{i}, question: "case {i}", answer: "case {i}"}}\n' for i in range(cases))
    spec = SPEC.format(
        scenario=scenario, cases=rows.rstrip("\n"), base_url=fake.base_url, concurrency=CONCURRENCY,
        price=OUTPUT_PRICE, max_tokens=max_tokens,
    )
    (pytester.path / "specs").mkdir(exist_ok=True)
    (pytester.path / "specs" / f"{scenario}.yaml").write_text(spec, encoding="utf-8")


def _spent(path: Path) -> tuple[float, int, int]:
    """(USD spent, calls made, cases refused by the budget) over every variant."""
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    variants = [v for s in doc["scenarios"] for v in s["variants"].values()]
    refused = sum(1 for v in variants for c in v["cases"] if c["error"] and "--llmopt-budget" in c["error"])
    return sum(v["usage"]["cost_usd"] for v in variants), sum(v["usage"]["calls"] for v in variants), refused


def test_a_budget_for_50_calls_at_concurrency_64_makes_50_calls(pytester: pytest.Pytester, fake: FakeOpenAI) -> None:
    _write(pytester, fake, "exact", cases=200, max_tokens=2)  # estimate == cost: 2 output tokens
    budget = 50.5 * CALL_COST
    result = pytester.runpytest("specs", "--llmopt-budget", f"{budget}", "--llmopt-json", "r.json", "--llmopt-cache-dir", "c")
    spent, calls, refused = _spent(pytester.path / "r.json")
    assert fake.requests == calls == 50  # not 50 + the 64 in flight
    assert refused == 150
    assert spent == pytest.approx(50 * CALL_COST) and spent <= budget
    result.stdout.fnmatch_lines(["*used up: 150 calls not made (the run fails)*"])


def test_with_upper_bound_estimates_the_spend_stays_within_the_budget(
    pytester: pytest.Pytester, fake: FakeOpenAI
) -> None:
    _write(pytester, fake, "upper", cases=200, max_tokens=5)  # each call is estimated at 5 tokens, costs 2
    budget = 50.5 * CALL_COST
    pytester.runpytest("specs", "--llmopt-budget", f"{budget}", "--llmopt-json", "r.json", "--llmopt-cache-dir", "c")
    spent, calls, refused = _spent(pytester.path / "r.json")
    assert fake.requests == calls
    assert spent <= budget
    # Reservations at most hold back what the largest estimate exceeds the cost by: the
    # budget is used down to the last few calls' estimates.
    assert 48 <= calls <= 50, calls  # spent + one estimate passes the budget only after 48 calls
    assert refused == 200 - calls


def test_the_bound_holds_for_the_run_across_xdist_workers(pytester: pytest.Pytester, fake: FakeOpenAI) -> None:
    for name in ("first", "second"):
        _write(pytester, fake, name, cases=100, max_tokens=2)
    budget = 50.5 * CALL_COST
    pytester.runpytest_subprocess(
        "specs", "-n", "2", "--llmopt-budget", f"{budget}", "--llmopt-json", "r.json", "--llmopt-cache-dir", "c"
    )
    spent, calls, _ = _spent(pytester.path / "r.json")
    assert fake.requests == calls == 50 and spent <= budget
