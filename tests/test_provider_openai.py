"""The ``openai`` provider through the real SDK against a loopback fake server."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
from fakes.openai_server import FakeOpenAI, Scripted

from llmopt.dataset._case import Case
from llmopt.errors import LLMOptError, ProviderAuthError, ProviderError, ProviderUnavailable
from llmopt.provider import Request, Response
from llmopt.provider.openai import OpenAIProvider, OpenAIProviderType, error_table
from llmopt.spec._model import ModelSpec

KEY = "sk-test-FAKEKEY0123456789abcdef"
QUESTION = "What is the capital of France?"  # 6 tokens for the fake


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return KEY


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(served_model="gpt-4o-mini-2024-07-18", system_fingerprint="fp_test_42") as server:
        yield server


def make(fake: FakeOpenAI | None = None, **spec: Any) -> OpenAIProvider:
    spec.setdefault("id", "gpt-4o-mini")
    spec.setdefault("max_retries", 1)
    spec.setdefault("timeout", 5.0)
    if fake is not None:
        spec.setdefault("base_url", fake.base_url)
    return OpenAIProviderType().create(ModelSpec(provider="openai", **spec), Path("."))


def ask(provider: OpenAIProvider, text: str = QUESTION, params: Mapping[str, Any] | None = None) -> Response:
    request = Request(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        prompt=text,
        case=Case(id="q1"),
        params=dict(params or {}),
    )

    async def once() -> Response:
        try:
            return await provider.generate(request)
        finally:
            await provider.aclose()

    return asyncio.run(once())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- success ------------------------------------------------------------------------------


def test_success_reports_exact_tokens_served_model_and_fingerprint(fake: FakeOpenAI) -> None:
    response = ask(make(fake))
    assert response.text == QUESTION
    assert (response.input_tokens, response.output_tokens) == (2 + 6, 6)
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.metadata == {"system_fingerprint": "fp_test_42", "finish_reason": "stop"}
    assert response.cached is False and response.latency_s > 0
    assert fake.requests == 1
    assert fake.last_headers["authorization"] == f"Bearer {KEY}"
    assert fake.last_body is not None and fake.last_body["model"] == "gpt-4o-mini"
    assert fake.last_body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_params_pass_through_including_newer_and_unknown_names(fake: FakeOpenAI) -> None:
    params = {
        "temperature": 0,
        "max_completion_tokens": 50,
        "seed": 7,
        "stop": ["\n\n"],
        "top_p": 0.9,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "top_k": 5,  # not an SDK argument: sent in the body for compatible servers
    }
    ask(make(fake), params=params)
    assert fake.last_body is not None
    assert {k: fake.last_body.get(k) for k in params} == params
    assert "stream" not in fake.last_body


def test_sdk_option_params_become_request_options_not_body_fields(fake: FakeOpenAI) -> None:
    params = {"extra_headers": {"x-team": "search"}, "extra_body": {"guided_choice": ["a", "b"]}, "seed": 1}
    ask(make(fake), params=params)
    assert fake.last_body is not None and fake.last_headers["x-team"] == "search"
    assert fake.last_body["guided_choice"] == ["a", "b"] and fake.last_body["seed"] == 1
    assert "extra_headers" not in fake.last_body and "extra_body" not in fake.last_body


def test_client_uses_the_sdks_aiohttp_transport_when_installed() -> None:
    import openai

    async def build() -> Any:
        client = make().make_client(KEY)
        await client.close()
        return client

    client = asyncio.run(build())
    assert isinstance(client._client, openai.DefaultAioHttpClient)


def test_fine_tuned_id_is_just_a_model_id_with_its_own_price(fake: FakeOpenAI) -> None:
    fake.served_model = None
    model = "ft:gpt-4o-mini-2024-07-18:acme:faq:9zX"
    response = ask(make(fake, id=model))
    assert fake.last_body is not None and fake.last_body["model"] == model
    assert response.model == model
    assert response.cost_usd == pytest.approx((8 * 0.30 + 6 * 1.20) / 1e6)


def test_cost_from_the_pricing_table_with_cached_input(fake: FakeOpenAI) -> None:
    fake.cached_tokens = 4
    response = ask(make(fake, id="gpt-4o-mini-2024-07-18"))
    assert response.cached_input_tokens == 4
    assert response.cost_usd == pytest.approx(((8 - 4) * 0.15 + 4 * 0.075 + 6 * 0.60) / 1e6)


def test_cost_from_the_spec_price_override(fake: FakeOpenAI) -> None:
    response = ask(make(fake, id="my-local-model", price={"input": 1.0, "output": 2.0}))
    assert response.cost_usd == pytest.approx((8 * 1.0 + 6 * 2.0) / 1e6)


def test_unknown_model_costs_nothing(fake: FakeOpenAI) -> None:
    assert ask(make(fake, id="llama-3-8b-instruct")).cost_usd == 0.0


# -- resilience ---------------------------------------------------------------------------


def test_rate_limit_with_retry_after_then_success(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.rate_limited(retry_after="0.01"))
    provider = make(fake)
    response = ask(provider)
    assert response.text == QUESTION
    assert fake.requests == 2
    assert provider.limiter.rate_limited == 1


def test_overloaded_503_also_lowers_concurrency(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.server_error(503, retry_after="0.01"))
    provider = make(fake)
    assert ask(provider).text == QUESTION
    assert provider.limiter.rate_limited == 1 and provider.limiter.limit < provider.limiter.maximum


def test_rate_limit_outlasting_the_retries_is_a_case_error(fake: FakeOpenAI) -> None:
    fake.always(FakeOpenAI.rate_limited(retry_after="0.01"))
    provider = make(fake, max_retries=2)
    with pytest.raises(ProviderError, match=r"rate limited \(429\), still after 2 retries: Rate limit reached") as info:
        ask(provider)
    assert not isinstance(info.value, ProviderUnavailable)
    assert fake.requests == 3 and provider.limiter.rate_limited == 3


def test_persisting_500_is_a_provider_error_after_the_retries(fake: FakeOpenAI) -> None:
    fake.always(FakeOpenAI.server_error(500, retry_after="0.01"))
    with pytest.raises(ProviderError, match=r"server error \(500\), still after 1 retry: The server had an error"):
        ask(make(fake, max_retries=1))
    assert fake.requests == 2


def test_timeout_is_a_provider_error(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.slow(3.0))
    started = time.perf_counter()
    with pytest.raises(ProviderError, match=r"timed out after 0.2s"):
        ask(make(fake, timeout=0.2, max_retries=0))
    assert time.perf_counter() - started < 2.0


def test_server_down_names_the_address_it_could_not_connect_to() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ProviderError, match=rf"could not connect to {base_url} \(0 retries\): (ConnectError|ClientConnectorError)") as info:
        ask(make(base_url=base_url, max_retries=0))
    assert not isinstance(info.value, ProviderUnavailable)


def test_malformed_json_is_a_provider_error(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.malformed_json())
    with pytest.raises(ProviderError, match="malformed JSON in the response from http://127.0.0.1"):
        ask(make(fake))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Scripted(200, "<html>busy</html>", content_type="text/html"), "did not answer with JSON: '<html>busy</html>'"),
        (Scripted(200, {"id": "x", "choices": []}), "no choices"),
        (Scripted(200, ["not", "a", "completion"]), "no choices"),
    ],
    ids=["html", "no-choices", "json-list"],
)
def test_answers_that_are_not_completions_are_provider_errors(fake: FakeOpenAI, answer: Scripted, message: str) -> None:
    fake.script(answer)
    with pytest.raises(ProviderError, match=message):
        ask(make(fake))


def test_refusal_is_a_provider_error_with_its_text(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.refusal("I can't help with that request."))
    with pytest.raises(ProviderError, match=r"refused: I can't help with that request\."):
        ask(make(fake))


def test_content_filter_is_a_provider_error(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.content_filter())
    with pytest.raises(ProviderError, match="content filter"):
        ask(make(fake))


def test_empty_answer_is_a_provider_error(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.reply("", finish_reason="length"))
    with pytest.raises(ProviderError, match=r"empty answer \(finish_reason 'length'\)"):
        ask(make(fake))


def test_unknown_model_is_unavailable_and_named(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.error(404, "The model `gpt-9` does not exist or you do not have access to it."))
    with pytest.raises(ProviderUnavailable, match=r"model 'gpt-9' not found at http://127.0.0.1:\d+/v1 \(404\)"):
        ask(make(fake, id="gpt-9"))


def test_bad_request_keeps_status_and_server_message(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.error(400, "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens'."))
    with pytest.raises(ProviderError, match=r"bad request \(400\): Unsupported parameter: 'max_tokens'"):
        ask(make(fake), params={"max_tokens": 10})


# -- credentials --------------------------------------------------------------------------


def test_401_names_the_env_var_and_stops_further_calls(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.unauthorized())
    provider = make(fake)
    with pytest.raises(ProviderAuthError, match=r"authentication failed \(401\): check OPENAI_API_KEY") as first:
        ask(provider)
    assert KEY not in str(first.value) and "[redacted]" in str(first.value)
    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY"):
        ask(provider)
    assert fake.requests == 1


def test_missing_key_fails_closed_naming_the_env_var(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ProviderAuthError, match="set the environment variable OPENAI_API_KEY"):
        ask(make(fake))
    assert fake.requests == 0


def test_api_key_env_option_names_its_own_variable(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_GATEWAY_KEY", "gw-secret-value-123")
    assert ask(make(fake, options={"api_key_env": "ACME_GATEWAY_KEY"})).text == QUESTION
    assert fake.last_headers["authorization"] == "Bearer gw-secret-value-123"
    fake.script(FakeOpenAI.unauthorized())
    with pytest.raises(ProviderAuthError, match="check ACME_GATEWAY_KEY") as info:
        ask(make(fake, options={"api_key_env": "ACME_GATEWAY_KEY"}))
    assert "gw-secret-value-123" not in str(info.value)


def test_a_key_echoed_by_the_server_never_reaches_an_error_message(fake: FakeOpenAI) -> None:
    fake.script(FakeOpenAI.error(400, f"Invalid value near '{KEY}' in messages[1]"))
    with pytest.raises(ProviderError) as info:
        ask(make(fake))
    assert KEY not in str(info.value) and "[redacted]" in str(info.value)


# -- every SDK exception is mapped ---------------------------------------------------------


def _sdk_exception_classes() -> list[type[BaseException]]:
    import openai
    from openai import _exceptions

    found = {
        value
        for module in (openai, _exceptions)
        for value in list(vars(module).values())
        if isinstance(value, type) and issubclass(value, openai.OpenAIError)
    }
    return sorted(found | {openai.InvalidWebhookSignatureError}, key=lambda cls: cls.__name__)


def _instance(cls: type[BaseException]) -> BaseException:
    import httpx2
    import openai
    from openai.types.chat import ChatCompletion

    request = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    body = {"error": {"message": "the server says no"}}
    response = httpx2.Response(418, request=request, json=body)
    if issubclass(cls, openai.OAuthError):
        return cls(response=response, body=body)  # type: ignore[call-arg]
    if issubclass(cls, openai.APIStatusError):
        return cls("Error code: 418", response=response, body=body)
    if issubclass(cls, openai.APIResponseValidationError):
        return cls(response, body)
    if issubclass(cls, openai.APIConnectionError):
        return cls(request) if issubclass(cls, openai.APITimeoutError) else cls(request=request)  # type: ignore[call-arg]
    if issubclass(cls, openai.APIError):
        return cls("trouble", request, body=body)
    if issubclass(cls, openai.LengthFinishReasonError):
        return cls(completion=ChatCompletion.model_construct(usage=None))
    if issubclass(cls, openai.ContentFilterFinishReasonError):
        return cls()
    if issubclass(cls, openai.WebSocketConnectionClosedError):
        return cls("closed", unsent_messages=[])
    try:
        return cls("trouble")
    except TypeError:
        return cls()


@pytest.mark.parametrize("cls", _sdk_exception_classes(), ids=lambda cls: cls.__name__)
def test_every_sdk_exception_has_its_own_mapping(cls: type[BaseException]) -> None:
    table = error_table()
    assert cls in table, f"openai.{cls.__name__} is not in llmopt's error table"
    kind, _template = table[cls]
    mapped = make(base_url="http://127.0.0.1:1/v1").map_error(_instance(cls))  # type: ignore[arg-type]
    assert type(mapped) is kind
    assert isinstance(mapped, ProviderError)
    assert not str(mapped).startswith(f"openai: {cls.__name__}:"), "fell through to the generic fallback"


def test_sdk_exceptions_were_found() -> None:
    names = {cls.__name__ for cls in _sdk_exception_classes()}
    assert {"AuthenticationError", "RateLimitError", "APITimeoutError", "APIConnectionError"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("AuthenticationError", ProviderAuthError),
        ("PermissionDeniedError", ProviderAuthError),
        ("NotFoundError", ProviderUnavailable),
        ("RateLimitError", ProviderError),
        ("InternalServerError", ProviderError),
        ("APITimeoutError", ProviderError),
        ("APIConnectionError", ProviderError),
        ("BadRequestError", ProviderError),
        ("UnprocessableEntityError", ProviderError),
        ("ConflictError", ProviderError),
        ("ContentFilterFinishReasonError", ProviderError),
        ("APIResponseValidationError", ProviderError),
    ],
)
def test_error_table_kinds(name: str, kind: type[LLMOptError]) -> None:
    import openai

    assert error_table()[getattr(openai, name)][0] is kind


def test_permission_denied_names_the_env_var_and_status() -> None:
    import openai

    mapped = make(base_url="http://127.0.0.1:1/v1").map_error(_instance(openai.PermissionDeniedError))  # type: ignore[arg-type]
    assert isinstance(mapped, ProviderAuthError)
    assert "permission denied (418)" in str(mapped) and "OPENAI_API_KEY" in str(mapped)
    assert "the server says no" in str(mapped)


def test_unknown_exception_falls_back_to_type_and_message() -> None:
    mapped = make().map_error(RuntimeError("boom"))
    assert type(mapped) is ProviderError and str(mapped) == "openai: RuntimeError: boom"


# -- shape --------------------------------------------------------------------------------


def test_identity_is_model_and_base_url_never_the_key() -> None:
    provider = make(base_url="http://127.0.0.1:8000/v1")
    assert provider.cacheable is True
    assert dict(provider.identity()) == {"model": "gpt-4o-mini", "base_url": "http://127.0.0.1:8000/v1"}
    assert KEY not in json.dumps(provider.identity())


def test_client_gets_spec_timeout_and_retries_or_the_defaults() -> None:
    async def clients() -> tuple[Any, Any]:
        default = make(timeout=None, max_retries=None).make_client(KEY)
        tuned = make(timeout=7.5, max_retries=0).make_client(KEY)
        await default.close()
        await tuned.close()
        return default, tuned

    default, tuned = asyncio.run(clients())
    assert (default.timeout, default.max_retries) == (60.0, 4)
    assert (tuned.timeout, tuned.max_retries) == (7.5, 0)


def test_type_names_and_checks_reserved_params() -> None:
    ptype = OpenAIProviderType()
    assert (ptype.name, ptype.env_var) == ("openai", "OPENAI_API_KEY")
    problems = ptype.check(ModelSpec(provider="openai", id="gpt-4o-mini", params={"stream": True}), Path("."))
    assert problems == ["model.params.stream is set by llmopt and cannot be passed as a parameter"]
    assert ptype.check(ModelSpec(provider="openai", id="gpt-4o-mini", params={"seed": 1}), Path(".")) == []


def test_importing_the_provider_does_not_import_the_sdk() -> None:
    code = "import sys, llmopt, llmopt.provider.openai; print('openai' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- end to end through pytest ------------------------------------------------------------

E2E_SPEC = """\
llmopt: 1
scenario: openai-e2e
task:
  id: id
  expected: answer
  cases:
    - {{id: a, question: "Paris", answer: "Paris"}}
    - {{id: b, question: "the capital of Italy", answer: "the capital of Italy"}}
recipe:
  template: "{{{{ question }}}}"
model:
  provider: openai
  id: gpt-4o-mini
  base_url: {base_url}
  max_retries: 1
  params: {{temperature: 0, seed: 7}}
assertions:
  - metric: exact_match
    min: 1.0
"""


def test_spec_runs_through_pytest_and_the_rerun_is_served_from_the_cache(
    project: pytest.Pytester, fake: FakeOpenAI
) -> None:
    pytester = project
    spec = pytester.path / "specs" / "openai.yaml"
    spec.write_text(textwrap.dedent(E2E_SPEC.format(base_url=fake.base_url)), encoding="utf-8")

    pytester.runpytest("specs", "--llmopt-json", "cold.json").assert_outcomes(passed=1)
    assert fake.requests == 2
    cold = json.loads((pytester.path / "cold.json").read_text())["scenarios"][0]["variants"]["default"]
    assert cold["errors"] == 0
    assert (cold["usage"]["input_tokens"], cold["usage"]["output_tokens"]) == (1 + 4, 1 + 4)
    assert cold["usage"]["cache_hits"] == 0
    assert cold["usage"]["cost_usd"] == pytest.approx((5 * 0.15 + 5 * 0.60) / 1e6)
    assert fake.last_body is not None and fake.last_body["seed"] == 7
    served = {case["id"]: case["served"] for case in cold["cases"]}
    assert served["a"] == {"model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_test_42", "finish_reason": "stop"}

    pytester.runpytest("specs", "--llmopt-json", "warm.json").assert_outcomes(passed=1)
    assert fake.requests == 2
    warm = json.loads((pytester.path / "warm.json").read_text())["scenarios"][0]["variants"]["default"]
    assert warm["usage"]["cache_hits"] == 2
    for path in ("cold.json", "warm.json"):
        assert KEY not in (pytester.path / path).read_text()
