"""OpenAI and Anthropic variants in one spec, against loopback fakes through the real SDKs:
injected rate limits and overloads change no metric; a server that is down is an error."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from fakes.anthropic_server import FakeAnthropic
from fakes.anthropic_server import Scripted as AnthropicAnswer
from fakes.openai_server import FakeOpenAI, Scripted

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
def fakes() -> Iterator[tuple[FakeOpenAI, FakeAnthropic]]:
    with FakeOpenAI() as gpt, FakeAnthropic() as claude:
        yield gpt, claude


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
