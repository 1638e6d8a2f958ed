"""OpenAI and Anthropic variants in one spec, against loopback fakes through the real SDKs:
injected rate limits and overloads change no metric; a server that is down is an error;
transient failures are retried within the request's time budget, not a fixed count."""

from __future__ import annotations

import asyncio
import json
import random
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic_server import FakeAnthropic
from fakes.anthropic_server import Scripted as AnthropicAnswer
from fakes.openai_server import FakeOpenAI, Scripted

from llmopt.dataset._case import Case
from llmopt.errors import LLMOptError, ProviderError
from llmopt.provider import Request
from llmopt.provider._hosted import HostedProvider
from llmopt.provider.anthropic import AnthropicProviderType
from llmopt.provider.openai import OpenAIProviderType
from llmopt.spec._model import ModelSpec

CASES = 10

SPEC = """\
llmopt: 1
scenario: hosted
task:
  id: id
  expected: answer
  cases:
{cases}
recipe:
  template: "{{{{ question }}}}"
model: {{provider: openai, id: gpt-4o-mini, base_url: "{openai}", max_retries: 3, concurrency: 4}}
variants:
  gpt: {{}}
  claude: {{model: {{provider: anthropic, id: claude-3-5-haiku-20241022, base_url: "{anthropic}"}}}}
assertions:
  - {{metric: exact_match, min: 1.0}}
  - {{metric: exact_match, variant: claude, vs: gpt, min_delta: 0.0}}
"""


@pytest.fixture
def fakes(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> tuple[FakeOpenAI, FakeAnthropic]:
    return fake_openai, fake_anthropic


@pytest.fixture
def project(pytester: pytest.Pytester, fakes: tuple[FakeOpenAI, FakeAnthropic], monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    cases = "\n".join(f'    - {{id: c{i}, question: "word{i}", answer: "word{i}"}}' for i in range(CASES))
    spec = SPEC.format(cases=cases, openai=fakes[0].base_url, anthropic=fakes[1].base_url.rstrip("/"))
    (pytester.path / "specs").mkdir()
    (pytester.path / "specs" / "hosted.yaml").write_text(textwrap.dedent(spec), encoding="utf-8")
    return pytester


def variants(project: pytest.Pytester, name: str) -> dict:
    return json.loads((project.path / name).read_text(encoding="utf-8"))["scenarios"][0]["variants"]


def summary(doc: dict) -> dict:
    return {
        name: (v["metrics"]["exact_match"]["value"], v["errors"], v["usage"]["input_tokens"], v["usage"]["output_tokens"])
        for name, v in doc.items()
    }


def test_injected_rate_limits_and_overloads_change_no_metric(
    project: pytest.Pytester, fakes: tuple[FakeOpenAI, FakeAnthropic]
) -> None:
    gpt, claude = fakes
    project.runpytest("specs", "--llmopt-no-cache", "--llmopt-json", "clean.json").assert_outcomes(passed=3)
    # About 30% of the answers are now 429 (OpenAI) or 529 (Anthropic) before a success.
    gpt.script(*[Scripted(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": "0.01"}) if i % 3 == 0 else Scripted() for i in range(CASES + 4)])
    claude.push(*[AnthropicAnswer.overloaded() if i % 3 == 0 else AnthropicAnswer() for i in range(CASES + 4)])
    project.runpytest("specs", "--llmopt-no-cache", "--llmopt-json", "noisy.json").assert_outcomes(passed=3)
    assert summary(variants(project, "noisy.json")) == summary(variants(project, "clean.json"))
    assert summary(variants(project, "clean.json"))["gpt"] == (1.0, 0, 10, 10)


def test_a_server_that_is_down_gives_errors_not_failures(project: pytest.Pytester) -> None:
    spec = project.path / "specs" / "hosted.yaml"
    text = spec.read_text(encoding="utf-8")
    start = text.index('base_url: "http://127.0.0.1:') + len('base_url: "http://127.0.0.1:')
    port = text[start:text.index("/", start)]
    spec.write_text(text.replace(f"127.0.0.1:{port}/v1", "127.0.0.1:9/v1").replace("max_retries: 3", "max_retries: 0"), encoding="utf-8")
    result = project.runpytest("specs", "--llmopt-no-cache")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*could not connect to http://127.0.0.1:9/v1*"])


def test_no_file_llmopt_writes_contains_a_key(project: pytest.Pytester) -> None:
    project.runpytest("specs", "--llmopt-json", "out.json").assert_outcomes(passed=3)
    written = [p for p in Path(project.path).rglob("*") if p.is_file() and "specs" not in p.parts]
    assert any(p.suffix == ".sqlite3" for p in written)
    for path in written:
        data = path.read_bytes()
        assert b"sk-test-openai" not in data and b"sk-ant-test" not in data, path


# -- retries within the time budget (issue 14, item 17) ---------------------------------

REQUEST = Request(messages=[{"role": "user", "content": "hello there"}], prompt="hello there", case=Case(id="q1"))


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits without a retry-after of a millisecond or so (the policy, not the clock, is tested)."""
    monkeypatch.setattr(HostedProvider, "retry_base_s", 0.001)
    monkeypatch.setattr(HostedProvider, "retry_cap_s", 0.004)


def hosted(kind: str, base_url: str, **model: Any) -> HostedProvider:
    ptype = OpenAIProviderType() if kind == "openai" else AnthropicProviderType()
    model_id = "gpt-4o-mini" if kind == "openai" else "claude-3-5-haiku-20241022"
    return ptype.create(ModelSpec(provider=kind, id=model_id, base_url=base_url, **model), Path("."))


def answer(provider: HostedProvider) -> Any:
    async def once() -> Any:
        try:
            return await provider.generate(REQUEST)
        except LLMOptError as exc:
            return exc
        finally:
            await provider.aclose()

    return asyncio.run(once())


def limited(retry_after: str = "0.001") -> Scripted:
    return Scripted(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": retry_after})


def test_a_run_of_rate_limits_longer_than_the_old_retry_count_still_succeeds(keys: None) -> None:
    with FakeOpenAI() as gpt:
        gpt.script(*[limited() for _ in range(7)])
        found = answer(hosted("openai", gpt.base_url, timeout=10))
        assert found.text == "hello there" and gpt.requests == 8


def test_a_run_of_overloads_longer_than_the_old_retry_count_still_succeeds(keys: None) -> None:
    with FakeAnthropic() as claude:
        claude.push(*[AnthropicAnswer.overloaded() for _ in range(7)])
        found = answer(hosted("anthropic", claude.base_url.rstrip("/"), timeout=10))
        assert found.text == "hello there" and claude.count == 8


def test_without_retry_after_the_backoff_grows_until_an_answer(keys: None, quick_backoff: None) -> None:
    with FakeOpenAI() as gpt:
        gpt.script(*[FakeOpenAI.server_error(502) for _ in range(6)])
        found = answer(hosted("openai", gpt.base_url, timeout=10))
        assert found.text == "hello there" and gpt.requests == 7


def test_retries_stop_when_the_time_budget_is_spent(keys: None) -> None:
    with FakeOpenAI() as gpt:
        gpt.always(limited("0.02"))
        started = time.perf_counter()
        found = answer(hosted("openai", gpt.base_url, timeout=0.5))
        elapsed = time.perf_counter() - started
    assert type(found) is ProviderError and "rate limited (429), still after" in str(found)
    assert gpt.requests > 5 and elapsed < 2.0
    assert f"still after {gpt.requests - 1} retries" in str(found)


def test_a_retry_after_beyond_the_budget_gives_up_at_once(keys: None) -> None:
    with FakeAnthropic() as claude:
        claude.fallback = AnthropicAnswer.rate_limited(retry_after="30")
        started = time.perf_counter()
        found = answer(hosted("anthropic", claude.base_url.rstrip("/"), timeout=5))
        assert type(found) is ProviderError and "HTTP 429" in str(found) and claude.count == 1
        assert time.perf_counter() - started < 2.0


def test_an_explicit_max_retries_still_caps_the_count(keys: None) -> None:
    with FakeOpenAI() as gpt:
        gpt.always(limited())
        found = answer(hosted("openai", gpt.base_url, timeout=10, max_retries=2))
        assert "still after 2 retries" in str(found) and gpt.requests == 3


def test_a_bad_request_is_not_retried(keys: None) -> None:
    with FakeOpenAI() as gpt:
        gpt.script(FakeOpenAI.error(400, "max_tokens too large"))
        found = answer(hosted("openai", gpt.base_url, timeout=10))
        assert type(found) is ProviderError and gpt.requests == 1


def test_thirty_percent_injected_429_and_529_lose_no_case(
    project: pytest.Pytester, fakes: tuple[FakeOpenAI, FakeAnthropic]
) -> None:
    gpt, claude = fakes
    spec = project.path / "specs" / "hosted.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("max_retries: 3, ", ""), encoding="utf-8")
    rng = random.Random(14)
    # 30% faults, and a run of 6 in a row (the old limit of 4 SDK retries lost such a case).
    faults = [True] * 6 + [rng.random() < 0.3 for _ in range(60)]
    gpt.script(*[limited("0.005") if bad else Scripted() for bad in faults])
    claude.push(*[AnthropicAnswer.overloaded() if bad else AnthropicAnswer() for bad in faults])
    project.runpytest("specs", "--llmopt-no-cache", "--llmopt-json", "noisy.json").assert_outcomes(passed=3)
    found = summary(variants(project, "noisy.json"))
    assert found["gpt"][:2] == (1.0, 0) and found["claude"][:2] == (1.0, 0)
