"""The ``anthropic`` provider through the real SDK against a loopback fake server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic_server import FakeAnthropic, Scripted, count_words, unused_port

from llmopt.dataset._case import Case
from llmopt.errors import LLMOptError, ProviderAuthError, ProviderError, ProviderUnavailable
from llmopt.provider import Request, Response
from llmopt.provider.anthropic import (
    ERROR_KINDS,
    AnthropicProvider,
    AnthropicProviderType,
    error_kind,
)
from llmopt.spec._model import ModelSpec

KEY = "sk-ant-test-" + "Zq7" * 10
HAIKU = "claude-3-5-haiku-20241022"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return KEY


def make(base_url: str, **model: Any) -> AnthropicProvider:
    model.setdefault("id", HAIKU)
    model.setdefault("max_retries", 2)
    spec = ModelSpec(provider="anthropic", base_url=base_url, **model)
    return AnthropicProviderType().create(spec, Path("."))


def ask(user: str = "What is the capital of France", system: str | None = None, **params: Any) -> Request:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return Request(messages=messages, prompt=user, case=Case(id="q1"), params=params)


def run(provider: AnthropicProvider, *requests: Request) -> list[Response | LLMOptError]:
    """Each request's response or llmopt error, on one event loop; the client closed."""

    async def go() -> list[Response | LLMOptError]:
        out: list[Response | LLMOptError] = []
        try:
            for request in requests:
                try:
                    out.append(await provider.generate(request))
                except LLMOptError as exc:
                    out.append(exc)
        finally:
            await provider.aclose()
        return out

    return asyncio.run(go())


def one(provider: AnthropicProvider, request: Request | None = None) -> Any:
    return run(provider, request or ask())[0]


# -- success ---------------------------------------------------------------------------


def test_success_has_exact_tokens_served_model_and_stop_reason(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.message("Paris", input_tokens=17, output_tokens=2, model="claude-3-5-haiku-20241022"))
    response = one(make(fake_anthropic.base_url, id="claude-3-5-haiku-latest"))
    assert isinstance(response, Response)
    assert response.text == "Paris"
    assert (response.input_tokens, response.output_tokens, response.cached_input_tokens) == (17, 2, 0)
    assert response.model == "claude-3-5-haiku-20241022"
    assert response.metadata == {"stop_reason": "end_turn"}
    assert response.latency_s > 0
    assert fake_anthropic.last_headers["authorization"] == f"Bearer {KEY}"


def test_default_answer_echoes_with_word_counts(fake_anthropic: FakeAnthropic) -> None:
    response = one(make(fake_anthropic.base_url), ask("one two three", system="be brief"))
    assert response.text == "one two three"
    assert (response.input_tokens, response.output_tokens) == (5, 3)


def test_system_message_becomes_the_system_parameter(fake_anthropic: FakeAnthropic) -> None:
    one(make(fake_anthropic.base_url), ask("Hi", system="You are terse."))
    assert fake_anthropic.last_body["system"] == "You are terse."
    assert fake_anthropic.last_body["messages"] == [{"role": "user", "content": "Hi"}]


def test_no_system_message_sends_no_system(fake_anthropic: FakeAnthropic) -> None:
    one(make(fake_anthropic.base_url), ask("Hi"))
    assert "system" not in fake_anthropic.last_body


def test_params_pass_through_and_max_tokens_defaults(fake_anthropic: FakeAnthropic) -> None:
    params = {
        "temperature": 0,
        "top_p": 0.9,
        "top_k": 5,
        "stop": "###",
        "metadata": {"user_id": "ci"},
        "thinking": {"type": "disabled"},
    }
    one(make(fake_anthropic.base_url), ask(**params))
    body = fake_anthropic.last_body
    assert body["max_tokens"] == 1024
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0, 0.9, 5)
    assert body["stop_sequences"] == ["###"]
    assert "stop" not in body
    assert body["metadata"] == {"user_id": "ci"}
    assert body["thinking"] == {"type": "disabled"}
    assert body["model"] == HAIKU


def test_explicit_max_tokens_and_stop_sequences_are_kept(fake_anthropic: FakeAnthropic) -> None:
    one(make(fake_anthropic.base_url), ask(max_tokens=7, stop_sequences=["a", "b"]))
    assert fake_anthropic.last_body["max_tokens"] == 7
    assert fake_anthropic.last_body["stop_sequences"] == ["a", "b"]


def test_client_takes_timeout_retries_and_base_url_from_the_spec(fake_anthropic: FakeAnthropic) -> None:
    default = make(fake_anthropic.base_url, max_retries=None).make_client(KEY)
    tuned = make(fake_anthropic.base_url, timeout=5.5, max_retries=1).make_client(KEY)
    assert (default.timeout, default.max_retries) == (60.0, 4)
    assert (tuned.timeout, tuned.max_retries) == (5.5, 1)
    assert str(tuned.base_url).rstrip("/") == fake_anthropic.base_url


# -- rate limits, overloads, retries ---------------------------------------------------


def test_rate_limit_and_overload_are_retried_and_lower_concurrency(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.rate_limited(retry_after="0"), Scripted.overloaded())
    provider = make(fake_anthropic.base_url, max_retries=2)
    response = one(provider)
    assert isinstance(response, Response) and response.text == "What is the capital of France"
    assert fake_anthropic.count == 3
    assert provider.limiter.rate_limited == 2
    assert provider.limiter.limit < provider.limiter.maximum


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        (Scripted.overloaded(), 529, "Overloaded"),
        (Scripted.rate_limited(retry_after="0.001"), 429, "exceeded your rate limit"),
        (Scripted.server_error(), 500, "Internal server error"),
    ],
    ids=["529", "429", "500"],
)
def test_errors_outlasting_retries_are_case_errors(
    fake_anthropic: FakeAnthropic, answer: Scripted, status: int, message: str
) -> None:
    fake_anthropic.fallback = answer
    provider = make(fake_anthropic.base_url, max_retries=1)
    error = one(provider)
    assert type(error) is ProviderError
    assert f"HTTP {status}" in str(error) and message in str(error) and "after 1 retry" in str(error)
    assert fake_anthropic.count == 2
    assert provider.limiter.rate_limited == (2 if status in (429, 529) else 0)


def test_bad_request_is_a_case_error_with_the_servers_message(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.error(400, "invalid_request_error", "max_tokens: must be at most 8192"))
    error = one(make(fake_anthropic.base_url))
    assert type(error) is ProviderError
    assert str(error) == "anthropic: HTTP 400 BadRequestError: max_tokens: must be at most 8192"
    assert fake_anthropic.count == 1


# -- credentials -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [Scripted.unauthorized(), Scripted.error(403, "permission_error", "no access to this model")],
    ids=["401", "403"],
)
def test_refused_key_stops_at_once_naming_the_variable(fake_anthropic: FakeAnthropic, answer: Scripted) -> None:
    fake_anthropic.push(answer)
    first, second = run(make(fake_anthropic.base_url), ask(), ask("another question"))
    assert isinstance(first, ProviderAuthError)
    assert "ANTHROPIC_API_KEY" in str(first)
    assert second is first
    assert fake_anthropic.count == 1


def test_missing_key_is_an_auth_error_without_a_request(fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    error = one(make(fake_anthropic.base_url))
    assert isinstance(error, ProviderAuthError)
    assert "ANTHROPIC_API_KEY" in str(error)
    assert fake_anthropic.count == 0


def test_unknown_model_is_unavailable_naming_the_model(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.error(404, "not_found_error", "model: claude-nope"))
    error = one(make(fake_anthropic.base_url, id="claude-nope"))
    assert type(error) is ProviderUnavailable
    assert "'claude-nope' not found" in str(error) and "HTTP 404" in str(error)


# -- transport failures and odd answers ------------------------------------------------


def test_slow_answer_times_out(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.slow(5.0))
    error = one(make(fake_anthropic.base_url, timeout=0.3, max_retries=0))
    assert type(error) is ProviderError
    assert str(error) == f"anthropic: no answer from {fake_anthropic.base_url} within 0.3 s"


def test_server_down_is_a_case_error_naming_the_base_url() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    error = one(make(url, max_retries=0))
    assert type(error) is ProviderError
    assert str(error).startswith(f"anthropic: could not connect to {url}")


def test_malformed_json_is_a_case_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.malformed())
    error = one(make(fake_anthropic.base_url))
    assert type(error) is ProviderError
    assert "not valid JSON" in str(error)


def test_an_answer_that_is_not_json_is_a_case_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted(body="<html>gateway</html>", content_type="text/html"))
    error = one(make(fake_anthropic.base_url))
    assert type(error) is ProviderError
    assert "is not a message: <html>gateway</html>" in str(error)


def test_refusal_is_a_case_error_with_its_reason(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.refusal("Could enable harm."))
    error = one(make(fake_anthropic.base_url))
    assert type(error) is ProviderError
    assert str(error) == "anthropic: refused: cyber: Could enable harm."


def test_answer_without_text_is_a_case_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.message("", stop_reason="max_tokens"))
    error = one(make(fake_anthropic.base_url))
    assert type(error) is ProviderError
    assert "no text" in str(error) and "max_tokens" in str(error)


# -- error mapping ---------------------------------------------------------------------


def _sdk_exceptions() -> dict[str, type[BaseException]]:
    import anthropic

    return {
        name: obj
        for name, obj in vars(anthropic).items()
        if isinstance(obj, type) and issubclass(obj, anthropic.AnthropicError)
    }


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of any SDK exception class, as the SDK would build it."""
    import anthropic
    import httpx2

    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/messages")
    body = {"type": "error", "error": {"type": "x", "message": "server says no"}}
    response = httpx2.Response(getattr(cls, "status_code", 500), request=request, json=body)
    if issubclass(cls, anthropic.APIStatusError):
        return cls("Error code", response=response, body=body)
    if issubclass(cls, anthropic.APIResponseValidationError):
        return cls(response, body)
    if issubclass(cls, anthropic.APITimeoutError):
        return cls(request)
    if issubclass(cls, anthropic.APIConnectionError):
        return cls(request=request)
    if issubclass(cls, anthropic.APIError):
        return cls("server says no", request, body=None)
    return cls("server says no")


EXPECTED = {
    "auth": ProviderAuthError,
    "credentials": ProviderAuthError,
    "account": ProviderUnavailable,
    "not_found": ProviderUnavailable,
    "status": ProviderError,
    "timeout": ProviderError,
    "connection": ProviderError,
    "invalid": ProviderError,
    "other": ProviderError,
}


def test_every_exception_class_the_sdk_exports_is_mapped_explicitly() -> None:
    exported = _sdk_exceptions()
    assert len(exported) > 40
    unmapped = sorted({cls.__name__ for cls in exported.values()} - set(ERROR_KINDS))
    assert unmapped == []
    provider = make("http://127.0.0.1:9")
    for name, cls in exported.items():
        kind = ERROR_KINDS[cls.__name__]
        mapped = provider.map_error(_instance(cls))  # type: ignore[arg-type]
        assert type(mapped) is EXPECTED[kind], name
        assert str(mapped).startswith("anthropic: "), name


def test_table_uses_only_known_kinds() -> None:
    assert set(ERROR_KINDS.values()) == set(EXPECTED)


def test_status_code_subclasses_map_through_their_sdk_ancestor() -> None:
    _error_classes = pytest.importorskip("anthropic._error_classes")

    for cls in set(_error_classes.ERROR_CLASSES.values()):
        assert error_kind(_instance(cls)) is not None, cls.__name__


def test_auth_and_permission_errors_are_auth_errors_naming_the_variable() -> None:
    import anthropic

    provider = make("http://127.0.0.1:9")
    for cls in (anthropic.AuthenticationError, anthropic.PermissionDeniedError):
        mapped = provider.map_error(_instance(cls))  # type: ignore[arg-type]
        assert isinstance(mapped, ProviderAuthError) and "ANTHROPIC_API_KEY" in str(mapped)


def test_unknown_exception_falls_back_to_type_and_message() -> None:
    mapped = make("http://127.0.0.1:9").map_error(RuntimeError("odd"))
    assert type(mapped) is ProviderError
    assert str(mapped) == "anthropic: RuntimeError: odd"
    assert error_kind(RuntimeError("odd")) is None


def test_same_named_class_outside_the_sdk_is_not_in_the_table() -> None:
    class RateLimitError(Exception):
        pass

    assert error_kind(RateLimitError()) is None


def test_no_key_reaches_any_message(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(
        Scripted.error(400, "invalid_request_error", f"bad header x-api-key: {KEY}"),
        Scripted.unauthorized(f"invalid x-api-key {KEY}"),
    )
    bad, refused = run(make(fake_anthropic.base_url), ask(), ask("again"))
    down = one(make(f"http://127.0.0.1:{unused_port()}", max_retries=0))
    for error in (bad, refused, down):
        assert isinstance(error, ProviderError)
        assert KEY not in str(error) and KEY[:20] not in str(error)
    assert "[redacted]" in str(bad) and "[redacted]" in str(refused)


# -- cost, identity, checks ------------------------------------------------------------


def test_cost_from_the_price_table_counts_cache_reads_as_cached_input(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.message("ok", input_tokens=600, output_tokens=100, cache_read_input_tokens=400))
    response = one(make(fake_anthropic.base_url, id="claude-3-5-haiku-20241022"))
    assert (response.input_tokens, response.cached_input_tokens) == (1000, 400)
    assert response.cost_usd == pytest.approx((600 * 0.80 + 400 * 0.08 + 100 * 4.00) / 1e6)


def test_cache_writes_count_as_input(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.message("ok", input_tokens=10, output_tokens=1, cache_creation_input_tokens=90))
    response = one(make(fake_anthropic.base_url))
    assert (response.input_tokens, response.cached_input_tokens) == (100, 0)


def test_cost_from_a_price_override(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.push(Scripted.message("ok", input_tokens=1000, output_tokens=500))
    response = one(make(fake_anthropic.base_url, id="claude-private-1", price={"input": 2.0, "output": 10.0}))
    assert response.cost_usd == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)


def test_unknown_model_without_price_costs_nothing(fake_anthropic: FakeAnthropic) -> None:
    assert one(make(fake_anthropic.base_url, id="claude-private-1")).cost_usd == 0.0


def test_identity_is_model_and_base_url_never_the_key(fake_anthropic: FakeAnthropic) -> None:
    provider = make(fake_anthropic.base_url)
    assert provider.cacheable is True
    assert dict(provider.identity()) == {"model": HAIKU, "base_url": fake_anthropic.base_url}
    assert KEY not in json.dumps(dict(provider.identity()))


def test_type_names_its_environment_variable_and_checks_params() -> None:
    ptype = AnthropicProviderType()
    assert (ptype.name, ptype.env_var) == ("anthropic", "ANTHROPIC_API_KEY")
    spec = ModelSpec(provider="anthropic", id=HAIKU, params={"stream": True, "stop": "x", "stop_sequences": ["y"]})
    assert ptype.check(spec, Path(".")) == [
        "model.params.stream is set by llmopt for the anthropic provider: remove it",
        "model.params: give stop or stop_sequences, not both",
    ]
    assert ptype.check(ModelSpec(provider="anthropic", id=HAIKU, params={"temperature": 0}), Path(".")) == []


def test_importing_the_provider_does_not_import_the_sdk() -> None:
    code = "import sys, llmopt.provider.anthropic; print('anthropic' in sys.modules, 'httpx2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- end to end through pytest ---------------------------------------------------------

SPEC = """\
llmopt: 1
scenario: claude-echo
task:
  id: id
  expected: answer
  cases:
    - {id: a, question: "Paris is the capital", answer: "Paris is the capital"}
    - {id: b, question: "Rome", answer: "Rome"}
    - {id: c, question: "Oslo lies in Norway", answer: "Oslo lies in Norway"}
recipe:
  system: "Answer exactly"
  template: "{{ question }}"
model:
  provider: anthropic
  id: claude-3-5-haiku-20241022
  base_url: BASE_URL
  params: {temperature: 0, max_tokens: 64}
assertions:
  - metric: exact_match
    min: 1.0
"""


def test_spec_runs_through_pytest_with_exact_tokens_in_results(
    project: pytest.Pytester, fake_anthropic: FakeAnthropic
) -> None:
    pytester = project
    (pytester.path / "specs/claude.yaml").write_text(SPEC.replace("BASE_URL", fake_anthropic.base_url), encoding="utf-8")
    result = pytester.runpytest("specs", "--llmopt-json", "results.json")
    result.assert_outcomes(passed=1)
    variant = json.loads((pytester.path / "results.json").read_text())["scenarios"][0]["variants"]["default"]
    questions = ["Paris is the capital", "Rome", "Oslo lies in Norway"]
    expected_in = sum(count_words("Answer exactly " + q) for q in questions)
    expected_out = sum(count_words(q) for q in questions)
    assert (variant["usage"]["input_tokens"], variant["usage"]["output_tokens"]) == (expected_in, expected_out)
    assert variant["usage"]["cost_usd"] == pytest.approx((expected_in * 0.80 + expected_out * 4.00) / 1e6)
    assert {c["served"]["model"] for c in variant["cases"]} == {HAIKU}
    assert fake_anthropic.count == 3 and fake_anthropic.last_body["system"] == "Answer exactly"

    rerun = pytester.runpytest("specs")
    rerun.assert_outcomes(passed=1)
    assert fake_anthropic.count == 3  # every answer came from the cache
    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert written and not [p for p in written if KEY.encode() in p.read_bytes()]

