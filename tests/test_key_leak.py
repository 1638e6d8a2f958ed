"""A key that a server reflects reaches no file a run writes, nor its terminal output.

Fake servers echo the request's key (the whole ``Authorization`` header, and the
masked forms real servers use: ``sk-proj-****...wxyz``) in every error shape: an HTML
page with status 200, a proxy's HTML 502, a 400 JSON error, a 401, an answer cut off
halfway, and a successful answer quoting the header. A real pytest run writes the
results JSON, the HTML and Markdown reports, JUnit XML and its cache; none holds the
key or a fragment of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
from fakes import anthropic_server
from fakes.anthropic_server import FakeAnthropic
from fakes.openai_server import FakeOpenAI, Scripted

from llmopt.provider._hosted import redact

OPENAI_KEY = "sk-test-T9vLq2Rw8ZpXk4Nm7Bc1Hd5Jf3Gs6Qz7w"
ANTHROPIC_KEY = "sk-ant-api03-Mq8Vt2Lx5Rk9Wn3Pz7Hc4Jd1Fb6Gy0Ue8Xa"


def masked(key: str, stars: int = 20) -> str:
    """How OpenAI quotes a refused key: its first 8 characters, stars, its last 4."""
    return f"{key[:8]}{'*' * stars}{key[-4:]}"


def _page(headers: Mapping[str, str]) -> str:
    shown = "\n".join(f"{name}: {value}" for name, value in headers.items())
    return f"<html><body><h1>Request headers</h1><pre>{shown}</pre></body></html>"


def _openai_shape(request: Mapping[str, Any], headers: Mapping[str, str]) -> Scripted:
    """The answer the spec's ``params.shape`` asks for, reflecting this request's key."""
    auth = headers.get("authorization", "")
    key = auth.removeprefix("Bearer ").strip()
    shape = request.get("shape")
    if shape == "html200":
        return Scripted(200, f"Authorization: {auth}\n" + _page(headers), content_type="text/html")
    if shape == "html502":
        return Scripted(502, _page(headers), content_type="text/html")
    if shape == "json400":
        message = f"Invalid header 'Authorization: {auth}' (key ending in ...{key[-6:]}; sk-...{key[-4:]})"
        return FakeOpenAI.error(400, message)
    if shape == "unauthorized":
        message = f"Incorrect API key provided: {masked(key)}. You can find your API key at https://platform.openai.com."
        return Scripted(401, {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}})
    if shape == "cut":
        body = f'{{"id": "chatcmpl-cut", "echo": "{auth}", "more": "{key}", "choices": [{{"index": 0}}]}}'
        return Scripted(200, body.ljust(400), cut=True)
    if shape == "answer":
        return FakeOpenAI.reply(f"You sent {auth} (that is {masked(key)}, or sk-...{key[-4:]}).")
    raise AssertionError(f"unknown shape {shape!r}")


OPENAI_SPEC = """\
llmopt: 1
scenario: leak-{shape}
task:
  id: id
  expected: answer
  cases:
    - {{id: a, question: "What is 2+2?", answer: "4"}}
recipe:
  template: "{{{{ question }}}}"
model:
  provider: openai
  id: gpt-4o-mini
  base_url: {base_url}
  timeout: 3
  max_retries: 0
  params: {{shape: {shape}}}
assertions:
  - metric: exact_match
    min: 1.0
"""

ANTHROPIC_SPEC = """\
llmopt: 1
scenario: leak-anthropic-{name}
task:
  id: id
  expected: answer
  cases:
    - {{id: a, question: "What is 2+2?", answer: "4"}}
recipe:
  template: "{{{{ question }}}}"
model:
  provider: anthropic
  id: claude-3-5-haiku-latest
  base_url: {base_url}
  timeout: 3
  max_retries: 0
assertions:
  - metric: exact_match
    min: 1.0
"""

SHAPES = ("html200", "html502", "json400", "unauthorized", "cut", "answer")


def _anthropic_key(headers: Mapping[str, str]) -> str:
    """The key the SDK sent (``x-api-key``, or a bearer token in newer SDKs)."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()


def _anthropic_400(request: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
    key = _anthropic_key(headers)
    assert key, "the SDK sent no key"
    message = f"invalid x-api-key {key} (masked {key[:12]}...{key[-6:]})"
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def _anthropic_html(request: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
    return f"<html><p>x-api-key: {_anthropic_key(headers)}</p>" + _page(headers)


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, FakeAnthropic, FakeAnthropic]]:
    with FakeOpenAI() as openai, FakeAnthropic() as bad_request, FakeAnthropic() as html:
        openai.always(FakeOpenAI.choosing(_openai_shape))
        bad_request.fallback = anthropic_server.Scripted(400, _anthropic_400)
        html.fallback = anthropic_server.Scripted(200, _anthropic_html, content_type="text/html")
        yield openai, bad_request, html


def _fragments(key: str) -> list[str]:
    """What must not appear: the key, and every 8 characters of it after its prefix."""
    secret = key.split("-", 2)[-1] if key.startswith("sk-ant-") else key.removeprefix("sk-test-")
    return [key] + [secret[i : i + 8] for i in range(len(secret) - 7)]


def _leaks(text: str, key: str) -> list[str]:
    found = [f for f in _fragments(key) if f in text]
    tail = re.escape(key[-4:])
    found += re.findall(rf"(?:[*.\u2026]\s*{tail}|{tail}\b)", text)  # the suffix as servers echo it
    return found


def test_a_reflected_key_reaches_no_file_and_no_terminal_line(
    pytester: pytest.Pytester,
    servers: tuple[FakeOpenAI, FakeAnthropic, FakeAnthropic],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    openai, bad_request, html = servers
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    specs = pytester.path / "specs"
    specs.mkdir()
    for shape in SHAPES:
        (specs / f"{shape}.yaml").write_text(OPENAI_SPEC.format(shape=shape, base_url=openai.base_url), encoding="utf-8")
    for name, server in (("bad-request", bad_request), ("html", html)):
        text = ANTHROPIC_SPEC.format(name=name, base_url=server.base_url)
        (specs / f"anthropic_{name}.yaml").write_text(text, encoding="utf-8")

    result = pytester.runpytest(
        "specs", "-rA", "--llmopt-json", "out/results.json", "--llmopt-report", "out/report.html",
        "--llmopt-report", "out/report.md", "--junitxml", "out/junit.xml", "--llmopt-cache-dir", "cache",
    )

    assert openai.requests >= len(SHAPES) and bad_request.count >= 1 and html.count >= 1
    results = (pytester.path / "out" / "results.json").read_text(encoding="utf-8")
    assert results.count("[redacted]") >= len(SHAPES)  # every shape's echo reached the results, redacted
    terminal = "\n".join(result.outlines + result.errlines)
    written = {str(p.relative_to(pytester.path)): p.read_bytes().decode("utf-8", "replace") for p in _files(pytester.path)}
    assert {"out/results.json", "out/report.html", "out/report.md", "out/junit.xml"} <= set(written)
    for where, text in {"terminal": terminal, **written}.items():
        for key in (OPENAI_KEY, ANTHROPIC_KEY):
            assert not _leaks(text, key), f"{where} holds {_leaks(text, key)} of a key"


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "specs" not in p.parts]


# -- redact: echoed fragments, ordinary text left alone -----------------------------------------


@pytest.mark.parametrize(
    "echo",
    [
        masked(OPENAI_KEY),
        f"sk-proj-{'*' * 40}{OPENAI_KEY[-4:]}",
        f"sk-...{OPENAI_KEY[-4:]}",
        f"sk-…{OPENAI_KEY[-4:]}",
        f"...{OPENAI_KEY[-6:]}",
        f"****{OPENAI_KEY[-6:]}",
        f"**** {OPENAI_KEY[-8:]}",
        f"{OPENAI_KEY[:12]}****",
        f"Bearer {OPENAI_KEY}",
        f"'authorization: bearer {OPENAI_KEY[:19]}'",  # a message cut inside the key
        f"{OPENAI_KEY[8:20]}",  # a piece of the key, even without a mask
    ],
)
def test_redact_removes_echoed_key_fragments(echo: str) -> None:
    text = f"Incorrect API key provided: {echo}. See the docs."
    cleaned = redact(text, OPENAI_KEY)
    assert not _leaks(cleaned, OPENAI_KEY) and OPENAI_KEY[-4:] not in cleaned, cleaned
    assert cleaned.startswith("Incorrect API key provided: ") and "[redacted]" in cleaned
    assert cleaned.endswith(". See the docs.")


def test_redact_removes_a_masked_key_of_unknown_value() -> None:
    assert redact("key sk-proj-********wxyz refused; or sk-...wxyz") == "key [redacted] refused; or [redacted]"


@pytest.mark.parametrize(
    "text",
    [
        "Loading... done. Expected 3 dots... got 2",
        "scikit-learn, sk-learn and risk-averse users; a ** b and 2 * 3",
        "The answer is *bold* ... and wxyz is a word.",
        "Rating: ***** (5 stars), version 1.2.3...",
        "The rate limit was exceeded: retry in 20 s.",
        "Pay the bearer instruments in full; bearer tokens expire.",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text, OPENAI_KEY) == text


def test_redact_screens_texts_as_the_whole_pattern_would() -> None:
    """Text without "sk-" or a "bearer" in any case skips the key-shaped pattern; what
    the pattern matches always holds one of them, so the result is the same."""
    import random

    from llmopt.provider._hosted import _REDACTED, _SECRET, _without_fragments

    def unscreened(text: str, *secrets: str) -> str:
        for secret in secrets:
            text = text.replace(secret, _REDACTED)
        text = _SECRET.sub(_REDACTED, text)
        for secret in secrets:
            text = _without_fragments(text, secret)
        return text

    pieces = ["sk-", "SK-", "Sk-", "Bearer ", "BEARER\t", "bEaReR  ", "bearer", "abcdef0123456789", "token9",
              OPENAI_KEY[3:15], "proj-", "****", "...", " ", "\n", "é", "Authorization: ", "sk-proj-x1"]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert redact(text, OPENAI_KEY) == unscreened(text, OPENAI_KEY), text
        assert redact(text) == unscreened(text), text


def test_fragment_screen_passes_every_text_the_full_scan_would_change() -> None:
    """The screen before the fragment scan (4 of the key's characters in a row beside a
    mask, else 8) lets every text through that the scan would change."""
    import random

    from llmopt.provider._hosted import _cut_fragments, _without_fragments

    key = OPENAI_KEY
    pieces = [key[:6], key[:9], key[-4:], key[-7:], key[10:18], key[12:17], key[3:11], "sk-proj-", "****", "**", "...",
              "..", "\u2026", "\u2022\u2022", "\u2022", " ", "-", "_", "abcd", "fp_bench", "x"]
    rng = random.Random(11)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 7)))
        assert _without_fragments(text, key) == _cut_fragments(text, key), text
